"""A read-only view of the items region of a snapshot file.

Codec readers see only the bytes between the preamble and the tail, so no
decoder can run into the tail; each codec bounds its own items (msgpack's
``max_buffer_size``, a line length, ``_cbor_scan``).
"""

from __future__ import annotations

import io
from typing import BinaryIO

__all__ = ["ContentWindow"]


class ContentWindow(io.RawIOBase):
    """Bytes ``start`` .. ``end`` of ``file``; ``tell()`` is the absolute file offset."""

    def __init__(self, file: BinaryIO, start: int, end: int) -> None:
        super().__init__()
        self._file = file
        self._pos = start
        self.end = end
        file.seek(start)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def tell(self) -> int:
        return self._pos

    def at_end(self) -> bool:
        """True when every byte of the region has been read."""
        return self._pos >= self.end

    def _allowed(self, n: int) -> int:
        left = max(self.end - self._pos, 0)
        return left if n < 0 or n > left else n

    def read(self, n: int | None = -1) -> bytes:
        count = self._allowed(-1 if n is None else n)
        if count == 0:
            return b""
        data = self._file.read(count)
        self._pos += len(data)
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def readline(self, limit: int | None = -1) -> bytes:
        """Read through the next newline, at most ``limit`` bytes (and never past the window)."""
        want = self.end - self._pos if limit is None or limit < 0 else limit
        count = self._allowed(want)
        if count == 0:
            return b""
        line = self._file.readline(count)
        self._pos += len(line)
        return line
