"""A read-only, seekable file over bytes that live elsewhere: the base of the stream views."""

from __future__ import annotations

import abc
import io

__all__ = ["ReadOnlyView"]


class ReadOnlyView(io.RawIOBase):
    """``size`` bytes with a position of their own; a subclass reads them (``read_at``)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self._size = size
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._position = base + offset
        return self._position

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        want = min(len(buffer), self._size - self._position)
        if want <= 0:
            return 0
        data = self.read_at(self._position, want)
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)

    @abc.abstractmethod
    def read_at(self, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes (at least one) at ``offset``, which is inside the view."""
