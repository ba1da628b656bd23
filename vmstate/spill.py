"""Long byte strings kept in a temporary file, read back a chunk at a time.

A section body nothing describes can be as long as the stream (hundreds of
MB).  Output that holds it until the end (``dump``'s model, one side of
``migration-diff``) keeps it here instead: one copy on disk, never a second
one in memory, hex written and bodies compared chunk by chunk.
"""

from __future__ import annotations

import tempfile
from typing import IO, Iterator

from .compare_bytes import first_difference as first_bytes_difference

__all__ = ["Spill", "Blob", "Bytes", "CHUNK", "chunks", "first_difference"]

#: how much of a blob is read or hexed at a time
CHUNK = 1 << 20


class Spill:
    """A temporary file that long byte strings are appended to; closing it drops them all."""

    def __init__(self, threshold: int = CHUNK) -> None:
        self._threshold = threshold
        self._file: IO[bytes] | None = None
        self._end = 0

    def keep(self, data: bytes | bytearray | memoryview) -> "bytes | Blob":
        """``data`` as bytes when short, else as a ``Blob`` in the spill file."""
        if len(data) <= self._threshold:
            return bytes(data)
        if self._file is None:
            self._file = tempfile.TemporaryFile()
        self._file.seek(self._end)
        view = memoryview(data)
        for start in range(0, len(view), CHUNK):
            self._file.write(view[start : start + CHUNK])
        blob = Blob(self, self._end, len(view))
        self._end += len(view)
        return blob

    def _read(self, offset: int, size: int) -> bytes:
        if self._file is None:
            raise ValueError("the spill file is closed")
        self._file.seek(offset)
        return self._file.read(size)

    def close(self) -> None:
        """Delete the spill file (its blobs can no longer be read)."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> "Spill":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class Blob:
    """A byte string in a ``Spill``: its length and its chunks, never all of it at once."""

    __slots__ = ("_spill", "_offset", "_length")

    def __init__(self, spill: Spill, offset: int, length: int) -> None:
        self._spill, self._offset, self._length = spill, offset, length

    def __len__(self) -> int:
        return self._length

    def head(self, size: int) -> bytes:
        """The first ``size`` bytes."""
        return self._spill._read(self._offset, min(size, self._length))

    def chunks(self, size: int = CHUNK) -> Iterator[bytes]:
        """The bytes in order, ``size`` at a time."""
        for start in range(0, self._length, size):
            yield self._spill._read(self._offset + start, min(size, self._length - start))

    def __repr__(self) -> str:
        return f"<Blob of {self._length} bytes>"


#: what holds a byte string here: short ones as bytes, long ones spilled
Bytes = bytes | Blob


def chunks(data: Bytes, size: int = CHUNK) -> Iterator[bytes]:
    """``data`` a chunk at a time, whether it is bytes or a ``Blob``."""
    if isinstance(data, Blob):
        yield from data.chunks(size)
    else:
        view = memoryview(data)
        for start in range(0, len(view), size):
            yield bytes(view[start : start + size])


def first_difference(a: Bytes, b: Bytes) -> int | None:
    """The first offset at which ``a`` and ``b`` differ (a length difference counts), None if equal."""
    done = 0
    for x, y in zip(chunks(a), chunks(b)):
        at = first_bytes_difference(x, y)
        if at is not None:
            return done + at
        done += len(x)
    return None if len(a) == len(b) else min(len(a), len(b))
