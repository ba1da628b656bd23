"""The project's one exception hierarchy.

``VMStateError`` is the root.  ``DescriptionError`` is a caller mistake (a bad
description or a value that does not fit it); ``DecodeError`` is bad input.
Bad-input errors carry where they happened: the absolute byte ``offset``, the
``section`` (idstr), the ``version`` being loaded and the field ``path``.  The
engine and the stream reader fill in what they know as the error travels up,
so the innermost (most precise) context wins.
"""

from __future__ import annotations

from typing import Iterable

__all__ = [
    "VMStateError",
    "DescriptionError",
    "EncodeError",
    "DecodeError",
    "TruncatedError",
    "MalformedError",
    "LimitExceededError",
    "VersionError",
    "UnknownSubsectionError",
    "UnknownSectionError",
    "UnnamedSectionError",
    "UnsupportedError",
    "format_path",
]

PathItem = str | int


def format_path(path: Iterable[PathItem]) -> str:
    """Render a field path like ``vq[3].last_avail_idx``."""
    text = ""
    for item in path:
        if isinstance(item, int):
            text += f"[{item}]"
        elif text:
            text += f".{item}"
        else:
            text = item
    return text


class VMStateError(Exception):
    """Root of every error this project raises on purpose."""


class DescriptionError(VMStateError, ValueError):
    """A description is malformed (a caller mistake, not bad input)."""


class EncodeError(VMStateError, ValueError):
    """A value does not fit the description it is encoded with."""

    def __init__(self, message: str, *, path: tuple[PathItem, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.path = path

    def __str__(self) -> str:
        where = format_path(self.path)
        return f"{where}: {self.message}" if where else self.message


class DecodeError(VMStateError):
    """Input bytes do not form a valid stream; says where and why."""

    def __init__(
        self,
        message: str,
        *,
        offset: int | None = None,
        section: str | None = None,
        path: tuple[PathItem, ...] | None = None,
        version: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset
        self.section = section
        self.path = path
        self.version = version

    def add_context(
        self,
        *,
        offset: int | None = None,
        section: str | None = None,
        path: tuple[PathItem, ...] | None = None,
        version: int | None = None,
    ) -> None:
        """Fill in context the raiser did not know; never overwrite it."""
        if self.offset is None:
            self.offset = offset
        if self.section is None:
            self.section = section
        if self.path is None:
            self.path = path
        if self.version is None:
            self.version = version

    def __str__(self) -> str:
        parts = []
        if self.offset is not None:
            parts.append(f"at {self.offset:#x}")
        if self.section is not None:
            parts.append(f"in {self.section}")
        where = " ".join(parts)
        if self.path:
            field = format_path(self.path)
            where = f"{where}: {field}" if where else field
        if self.version is not None:
            where = f"{where} (v{self.version})"
        return f"{where}: {self.message}" if where else self.message


class TruncatedError(DecodeError, EOFError):
    """The input ended before a complete item was read."""


class MalformedError(DecodeError, ValueError):
    """A byte or value is not what the format allows at that point."""


class LimitExceededError(DecodeError):
    """A length or count read from the input exceeds a named limit."""


class VersionError(DecodeError):
    """A version number is outside the range a description can load."""


class UnknownSubsectionError(DecodeError):
    """A subsection carries its parent's prefix but is not known to it."""


class UnknownSectionError(DecodeError):
    """A section cannot be decoded and its end cannot be found."""


class UnnamedSectionError(DecodeError, ValueError):
    """A section that must decode field by field (a virtio device) was decoded only as a blob or raw bytes."""


class UnsupportedError(DecodeError):
    """The input uses a valid feature this project does not decode."""
