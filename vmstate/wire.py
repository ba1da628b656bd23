"""Offset-tracking byte reader and writer over file objects.

The reader pulls from any binary file object in chunks, never reading the
whole input first.  It can pin a position (``mark``) and go back to it
(``rewind``), which lets a caller try one way of decoding and fall back to
another without re-reading the file.  Every shortfall is a ``TruncatedError``
naming the offset.
"""

from __future__ import annotations

import os
import struct
from typing import BinaryIO

from .errors import TruncatedError

__all__ = ["ByteReader", "ByteWriter", "INT_STRUCTS", "LE_INT_STRUCTS"]

_CHUNK = 1 << 16
_MAX_READ = 1 << 22

#: precompiled big-endian struct per (width, signed)
INT_STRUCTS: dict[tuple[int, bool], struct.Struct] = {
    (1, False): struct.Struct(">B"),
    (2, False): struct.Struct(">H"),
    (4, False): struct.Struct(">I"),
    (8, False): struct.Struct(">Q"),
    (1, True): struct.Struct(">b"),
    (2, True): struct.Struct(">h"),
    (4, True): struct.Struct(">i"),
    (8, True): struct.Struct(">q"),
}

#: the same in little-endian order, for host-order blobs
LE_INT_STRUCTS: dict[tuple[int, bool], struct.Struct] = {
    key: struct.Struct("<" + packer.format[1:]) for key, packer in INT_STRUCTS.items()
}
_U8, _U16, _U32, _U64 = (INT_STRUCTS[(w, False)] for w in (1, 2, 4, 8))


class ByteReader:
    """Read a big-endian byte stream incrementally, tracking the offset."""

    def __init__(self, source: BinaryIO | bytes, *, base_offset: int = 0) -> None:
        if isinstance(source, (bytes, bytearray, memoryview)):
            self._file: BinaryIO | None = None
            self._buf = bytes(source)
        else:
            self._file = source
            self._buf = b""
        self._pos = 0
        self._base = base_offset
        self._pins: list[int] = []

    @property
    def offset(self) -> int:
        """Absolute offset of the next byte to be read."""
        return self._base + self._pos

    def _available(self) -> int:
        return len(self._buf) - self._pos

    def _fill(self, n: int) -> bool:
        """Make ``n`` bytes available if the input has them."""
        if self._available() >= n:
            return True
        if self._file is None:
            return False
        keep_from = min([self._pos, *(p - self._base for p in self._pins)])
        if keep_from:
            self._buf = self._buf[keep_from:]
            self._base += keep_from
            self._pos -= keep_from
        parts = [self._buf]
        have = self._available()
        while have < n:
            # at most _MAX_READ (4 MiB) at a time: a file object allocates what it is asked for, whatever it holds
            chunk = self._file.read(min(max(n - have, _CHUNK), _MAX_READ))
            if not chunk:
                break
            parts.append(chunk)
            have += len(chunk)
        self._buf = b"".join(parts)
        return have >= n

    def read(self, n: int) -> bytes:
        """Consume exactly ``n`` bytes."""
        start = self._pos
        end = start + n
        if end <= len(self._buf):  # the common case, kept short: it runs for every field
            self._pos = end
            return self._buf[start:end]
        if not self._fill(n):
            raise TruncatedError(
                f"expected {n} bytes, got {self._available()}", offset=self.offset
            )
        start = self._pos
        self._pos += n
        return self._buf[start : self._pos]

    def peek(self, n: int) -> bytes:
        """Return up to ``n`` upcoming bytes without consuming them."""
        if self._pos + n > len(self._buf):
            self._fill(n)
        return self._buf[self._pos : self._pos + n]

    def peek_at(self, ahead: int, n: int) -> bytes:
        """Return up to ``n`` bytes from ``ahead`` bytes past the current position, consuming nothing.

        Unlike ``peek(ahead + n)`` the bytes in between are not buffered: a
        seekable file is read there directly, so a scan through a long body
        holds one window at a time.
        """
        start = self._pos + ahead
        have = self._buf[start : start + n]
        if len(have) == n or self._file is None or not self._file.seekable():
            return have if len(have) == n or self._file is None else self.peek(ahead + n)[ahead:]
        here = self._file.tell()  # the file position of the buffer's end
        try:
            self._file.seek(here + max(0, start - len(self._buf)))
            rest = self._file.read(n - len(have))
        finally:
            self._file.seek(here)
        return have + rest

    def read_once(self, n: int) -> bytes:
        """Consume exactly ``n`` bytes, copying a long run only once (it is read from a seekable file directly)."""
        if n <= self._available() + _MAX_READ or self._file is None or self._pins or not self._file.seekable():
            return self.read(n)
        start = self.offset
        position = self._file.tell() - self._available()
        left = self._file.seek(0, os.SEEK_END) - position
        if left < n:  # asked for more than the file holds: never allocate that
            self._file.seek(position + self._available())
            raise TruncatedError(f"expected {n} bytes, got {left}", offset=start)
        self._file.seek(position)  # the buffered bytes go back to the file: one read copies them once
        self._buf, self._base, self._pos = b"", start + n, 0
        return self._file.read(n)

    def skip(self, n: int) -> None:
        """Consume ``n`` bytes without keeping them (or copying them: past the buffer, a seekable file seeks)."""
        end = self._pos + n
        if end <= len(self._buf):
            self._pos = end
            return
        if self._file is None or self._pins or not self._file.seekable():
            self.read(n)
            return
        start = self.offset
        position = self._file.tell()  # the file position of the buffer's end
        beyond = n - self._available()
        left = self._file.seek(0, os.SEEK_END) - position
        if left < beyond:
            self._file.seek(position)
            raise TruncatedError(f"expected {n} bytes, got {self._available() + left}", offset=start)
        self._file.seek(position + beyond)
        self._buf, self._base, self._pos = b"", start + n, 0

    def at_eof(self) -> bool:
        """True when no byte is left."""
        return not self._fill(1)

    def mark(self) -> int:
        """Pin the current position so that ``rewind`` can return to it."""
        self._pins.append(self.offset)
        return self.offset

    def release(self, mark: int) -> None:
        """Unpin a position returned by ``mark``."""
        self._pins.remove(mark)

    def rewind(self, mark: int) -> None:
        """Go back to a pinned position (the pin stays until released)."""
        self._pos = mark - self._base

    def u8(self) -> int:
        return _U8.unpack(self.read(1))[0]

    def u16(self) -> int:
        return _U16.unpack(self.read(2))[0]

    def u32(self) -> int:
        return _U32.unpack(self.read(4))[0]

    def u64(self) -> int:
        return _U64.unpack(self.read(8))[0]


class ByteWriter:
    """Write bytes to a file object, tracking the offset."""

    def __init__(self, sink: BinaryIO) -> None:
        self._sink = sink
        self.offset = 0

    def write(self, data: bytes) -> None:
        self._sink.write(data)
        self.offset += len(data)

    def u8(self, value: int) -> None:
        self.write(_U8.pack(value))

    def u16(self, value: int) -> None:
        self.write(_U16.pack(value))

    def u32(self, value: int) -> None:
        self.write(_U32.pack(value))

    def u64(self, value: int) -> None:
        self.write(_U64.pack(value))
