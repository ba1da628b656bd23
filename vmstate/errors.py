"""The project's one exception hierarchy.

``VMStateError`` is the root.  ``DescriptionError`` is a caller mistake (a bad
description or a value that does not fit it); ``DecodeError`` is bad input.
Bad-input errors carry where they happened: the absolute byte ``offset``, the
``section`` (idstr), the ``version`` being loaded and the field ``path``; inside
a snapshot also the ``item`` (its number and kind) and, for a state checked
as QEMU bytes that are not the file's, the ``section_offset`` in them.  The
engine and the readers fill in what they know as the error travels up, so
the innermost (most precise) context wins; none of it is written into
``message``, and ``str()`` renders it all.

Leaves also subclass the builtin they resemble: a truncation is an
``EOFError``, a limit, version or malformed byte a ``ValueError``, an
unsupported feature a ``NotImplementedError``.
"""

from __future__ import annotations

from typing import Iterable

__all__ = [
    "VMStateError",
    "DescriptionError",
    "EncodeError",
    "EditError",
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
    """A value does not fit the description it is encoded with; ``section`` and ``path`` say where."""

    def __init__(self, message: str, *, path: tuple[PathItem, ...] = (), section: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.section = section

    def __str__(self) -> str:
        where = format_path(self.path)
        if self.section is not None:
            where = f"in {self.section}: {where}" if where else f"in {self.section}"
        return f"{where}: {self.message}" if where else self.message


class EditError(EncodeError):
    """An edit names a section, path or value the stream cannot take; nothing is written."""


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
        item: int | None = None,
        item_kind: str | None = None,
        section_offset: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset
        self.section = section
        self.path = path
        self.version = version
        #: the snapshot item the error is in: its number and its kind (``device``, ...)
        self.item = item
        self.item_kind = item_kind
        #: where in a section's QEMU bytes, when those are rebuilt (a snapshot's state), not read from the file
        self.section_offset = section_offset

    def add_context(
        self,
        *,
        offset: int | None = None,
        section: str | None = None,
        path: tuple[PathItem, ...] | None = None,
        version: int | None = None,
        item: int | None = None,
        item_kind: str | None = None,
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
        if self.item is None:
            self.item = item
            self.item_kind = item_kind

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
        text = self.message
        if self.section_offset is not None:
            text = f"{text} (byte {self.section_offset} of the section)"
        if self.item is not None:
            text = f"item {self.item}{f' ({self.item_kind})' if self.item_kind else ''}: {text}"
        return f"{where}: {text}" if where else text


class TruncatedError(DecodeError, EOFError):
    """The input ended before a complete item was read."""


class MalformedError(DecodeError, ValueError):
    """A byte or value is not what the format allows at that point."""


class LimitExceededError(DecodeError, ValueError):
    """A length or count read from the input exceeds a named limit."""


class VersionError(DecodeError, ValueError):
    """A version number is outside the range a description can load."""


class UnknownSubsectionError(DecodeError, ValueError):
    """A subsection carries its parent's prefix but is not known to it."""


class UnknownSectionError(DecodeError, ValueError):
    """A section cannot be decoded and its end cannot be found."""


class UnnamedSectionError(DecodeError, ValueError):
    """A section that must decode field by field (a virtio device) was decoded only as a blob or raw bytes."""


class UnsupportedError(DecodeError, NotImplementedError):
    """The input uses a valid feature this project does not decode."""
