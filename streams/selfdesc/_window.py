"""A read-only view of the items region of a snapshot file.

Codec readers see only the bytes between the preamble and the tail, so no
decoder can run into the tail.  ``begin_item(budget)`` caps how many bytes
the next item may take: a read past the cap returns end-of-file (so a
library decoder stops with its own EOF error, whatever length it was told)
and sets ``over_budget`` so the caller reports a limit, not a truncation.
The view says it is not seekable, which makes cbor2 read exactly what it
needs instead of reading ahead.
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
        self._budget_end = end
        self.over_budget = False
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

    def begin_item(self, budget: int) -> None:
        """Allow the next item at most ``budget`` bytes from here."""
        self._budget_end = min(self.end, self._pos + budget)
        self.over_budget = False

    def _allowed(self, n: int) -> int:
        left = max(self._budget_end - self._pos, 0)
        if n < 0:
            return left
        if n > left:
            self.over_budget = self._budget_end < self.end
            return left
        return n

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
        """Read through the next newline, at most ``limit`` bytes (and never past the budget)."""
        want = self._budget_end - self._pos if limit is None or limit < 0 else limit
        count = self._allowed(want)
        if count == 0:
            return b""
        line = self._file.readline(count)
        self._pos += len(line)
        return line
