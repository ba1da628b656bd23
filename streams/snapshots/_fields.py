"""Typed, checked access to the keys of one untrusted item.

Every value taken from an item is checked for type and range before it is
used, so that a record built from it can always be written back to QEMU's
wire (no ``struct.error`` or ``OverflowError`` later) and no bare
``KeyError``/``TypeError`` escapes.
"""

from __future__ import annotations

from typing import Any

from vmstate.errors import LimitExceededError, MalformedError

__all__ = ["ItemFields"]

_MISSING = object()


class ItemFields:
    """The keys of one item of type ``kind``; each getter raises ``MalformedError`` naming the key."""

    def __init__(self, item: Any, kind: str) -> None:
        self.kind = kind
        self._item: dict[str, Any] = item

    def bad(self, key: str, what: str) -> MalformedError:
        return MalformedError(f"{self.kind} item: {key!r} {what}")

    def has(self, key: str) -> bool:
        return key in self._item

    def raw(self, key: str) -> Any:
        value = self._item.get(key, _MISSING)
        if value is _MISSING:
            raise self.bad(key, "is missing")
        return value

    def uint(self, key: str, bits: int = 64) -> int:
        value = self.raw(key)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << bits:
            raise self.bad(key, f"is {value!r}, not a u{bits}")
        return value

    def sint(self, key: str, bits: int) -> int:
        value = self.raw(key)
        half = 1 << (bits - 1)
        if isinstance(value, bool) or not isinstance(value, int) or not -half <= value < half:
            raise self.bad(key, f"is {value!r}, not an s{bits}")
        return value

    def optional_uint(self, key: str, bits: int = 64) -> int | None:
        return self.uint(key, bits) if key in self._item else None

    def text(self, key: str, max_length: int = 1 << 20) -> str:
        value = self.raw(key)
        if not isinstance(value, str):
            raise self.bad(key, f"is a {type(value).__name__}, not text")
        if len(value) > max_length:
            raise LimitExceededError(f"{self.kind} item: {key!r} is longer than {max_length} characters")
        return value

    def optional_text(self, key: str) -> str | None:
        return self.text(key) if key in self._item else None

    def wire_name(self, key: str) -> str:
        """Text QEMU writes as a u8 length and latin-1 bytes (idstrs, RAM block names)."""
        value = self.text(key, 255)
        try:
            value.encode("latin-1")
        except UnicodeEncodeError:
            raise self.bad(key, "is not latin-1 text") from None
        return value

    def blob(self, key: str, max_length: int) -> bytes:
        value = self.raw(key)
        if not isinstance(value, bytes):
            raise self.bad(key, f"is a {type(value).__name__}, not bytes")
        if len(value) > max_length:
            raise LimitExceededError(f"{self.kind} item: {key!r} holds {len(value)} bytes, more than {max_length}")
        return value

    def list(self, key: str, max_length: int) -> list[Any]:
        value = self.raw(key)
        if not isinstance(value, list):
            raise self.bad(key, f"is a {type(value).__name__}, not a list")
        if len(value) > max_length:
            raise LimitExceededError(f"{self.kind} item: {key!r} holds {len(value)} entries, more than {max_length}")
        return value

    def map(self, key: str) -> dict[str, Any]:
        value = self.raw(key)
        if not isinstance(value, dict):
            raise self.bad(key, f"is a {type(value).__name__}, not a map")
        return value
