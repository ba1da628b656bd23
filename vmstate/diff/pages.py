"""Per-page digests of guest RAM, kept on disk so memory does not grow with the guest.

One table per RAM block: page ``i``'s digest lives at byte ``i * DIGEST_SIZE``
of a temporary file.  A page that was never sent reads back as all zeros
(the sentinel ``ABSENT``); every stored digest has its low bit set, so no
real digest equals it.  Digests are written a run at a time.  A page sent twice (precopy re-sends dirty pages)
keeps its last content, as QEMU's loader would.  Page contents are hashed
with xxHash's XXH3-128: the comparison needs speed, not secrecy.
"""

from __future__ import annotations

import errno
import os
import tempfile
from typing import Iterator

import attrs
import xxhash

from vmstate.errors import LimitExceededError

__all__ = ["DIGEST_SIZE", "ABSENT", "PageTable", "PageRange", "page_digest", "run_digests", "fill_digest", "compare_tables"]

DIGEST_SIZE = 16
ABSENT = bytes(DIGEST_SIZE)
_FLUSH_AT = 1 << 16
_CHUNK_PAGES = 4096
#: pages per RAM block the diff tracks: 256 TiB of 4 KiB pages (a 4 TiB sparse table at most)
MAX_PAGES = 1 << 36


_HASH = xxhash.xxh3_128_digest
#: byte -> byte | 1: every entry's last byte gets its low bit set, so none is ``ABSENT``
_LOW_BIT = bytes(b | 1 for b in range(256))


def page_digest(data: bytes | memoryview) -> bytes:
    """The table entry for a page with these contents."""
    digest = _HASH(data)
    return digest[:-1] + _LOW_BIT[digest[-1]].to_bytes(1, "big")


def run_digests(raw: bytes | memoryview, count: int, page_size: int, header: int = 8) -> bytes:
    """The entries of ``count`` pages laid out as wire records (``header`` bytes, then the page; 0 in mapped-ram)."""
    view, stride = memoryview(raw), header + page_size
    entries = bytearray(b"".join([_HASH(view[start : start + page_size]) for start in range(header, count * stride, stride)]))
    entries[DIGEST_SIZE - 1 :: DIGEST_SIZE] = entries[DIGEST_SIZE - 1 :: DIGEST_SIZE].translate(_LOW_BIT)
    return bytes(entries)


_FILL_CACHE: dict[tuple[int, int], bytes] = {}


def fill_digest(fill: int, page_size: int) -> bytes:
    """The entry for a page of one repeated byte (QEMU's ZERO records), equal to ``page_digest``'s."""
    key = (fill, page_size)
    if key not in _FILL_CACHE:
        _FILL_CACHE[key] = page_digest(bytes((fill,)) * page_size)
    return _FILL_CACHE[key]


def _in_temp_dir(error: OSError) -> OSError:
    """``error`` naming the temporary directory the digest tables live in, and how to choose another."""
    return type(error)(error.errno, f"{error.strerror} (page digest tables, in the temporary directory; "
                       "set TMPDIR to choose another)", tempfile.gettempdir())


class PageTable:
    """The digests of one RAM block's pages, written as pages stream past."""

    def __init__(self) -> None:
        try:
            self._file = tempfile.TemporaryFile(prefix="vmstate-pages-")
        except OSError as error:
            raise _in_temp_dir(error) from None
        self._fd = self._file.fileno()
        self._run_start = 0
        self._run = bytearray()
        #: one past the highest page index stored
        self.pages = 0
        #: what a never-written page reads as (``ABSENT``, or a zero page's entry: see ``absent_is_zero``)
        self._absent = ABSENT

    def absent_is_zero(self, page_size: int) -> None:
        """Pages never written read as zero pages: a mapped-ram block, whose loader leaves them zero."""
        self._absent = fill_digest(0, page_size)

    def set(self, index: int, digests: bytes) -> None:
        """Record the digests of pages ``index``, ``index + 1``, ... (later calls win)."""
        if index + len(digests) // DIGEST_SIZE > MAX_PAGES:
            raise LimitExceededError(
                f"page {index:#x} of a RAM block lies beyond the {MAX_PAGES:#x} pages migration-diff compares"
            )
        if self._run and index == self._run_start + len(self._run) // DIGEST_SIZE:
            self._run += digests
            if len(self._run) >= _FLUSH_AT:
                self._flush()
        else:
            self._flush()
            self._run_start = index
            self._run += digests
        self.pages = max(self.pages, index + len(digests) // DIGEST_SIZE)

    def _flush(self) -> None:
        if self._run:
            try:
                os.pwrite(self._fd, self._run, self._run_start * DIGEST_SIZE)
            except OSError as error:  # a full disk: the table is an unnamed file in the temporary directory
                raise _in_temp_dir(error) from None
            self._run = bytearray()

    def read(self, start: int, count: int) -> bytes:
        """Entries ``start .. start+count-1``; never-written pages read as ``ABSENT``."""
        self._flush()
        data = os.pread(self._fd, count * DIGEST_SIZE, start * DIGEST_SIZE).ljust(count * DIGEST_SIZE, b"\0")
        # Every stored entry's last byte is odd, so a run of 16 zero bytes found from the left is a whole entry.
        return data if self._absent == ABSENT else data.replace(ABSENT, self._absent)

    def next_data(self, index: int) -> int | None:
        """The first page at or after ``index`` that may have been written (None: none).

        The table is a sparse file: holes are skipped with ``SEEK_DATA``, so a
        block with a page at its far end costs no scan of the space between.
        """
        self._flush()
        if index >= self.pages:
            return None
        try:
            return max(index, os.lseek(self._fd, index * DIGEST_SIZE, os.SEEK_DATA) // DIGEST_SIZE)
        except OSError as error:
            if error.errno == errno.ENXIO:
                return None
            return index  # no SEEK_DATA here: look at every page

    def close(self) -> None:
        self._file.close()


@attrs.frozen
class PageRange:
    """A run of consecutive pages that differ in the same way."""

    first: int
    count: int
    #: ``changed`` (both sides sent it), ``only_a`` or ``only_b``
    kind: str


def _kind(a: bytes, b: bytes) -> str:
    if a == ABSENT:
        return "only_b"
    if b == ABSENT:
        return "only_a"
    return "changed"


def _next_start(a: PageTable | None, b: PageTable | None, index: int) -> int | None:
    found = [n for n in (a.next_data(index) if a else None, b.next_data(index) if b else None) if n is not None]
    return min(found) if found else None


def compare_tables(a: PageTable | None, b: PageTable | None) -> Iterator[PageRange]:
    """Yield the differing page ranges of two tables, in page order, a chunk at a time, skipping holes."""
    end = max(a.pages if a else 0, b.pages if b else 0)
    run: PageRange | None = None
    index = 0
    while index < end:
        found = _next_start(a, b, index)
        if found is None:
            break
        start = max(index, found - found % _CHUNK_PAGES)
        count = min(_CHUNK_PAGES, end - start)
        index = start + count
        chunk_a = a.read(start, count) if a else bytes(count * DIGEST_SIZE)
        chunk_b = b.read(start, count) if b else bytes(count * DIGEST_SIZE)
        if chunk_a == chunk_b:
            continue
        for i in range(count):
            da = chunk_a[i * DIGEST_SIZE : (i + 1) * DIGEST_SIZE]
            db = chunk_b[i * DIGEST_SIZE : (i + 1) * DIGEST_SIZE]
            if da == db:
                continue
            kind, page = _kind(da, db), start + i
            if run is not None and run.kind == kind and run.first + run.count == page:
                run = attrs.evolve(run, count=run.count + 1)
                continue
            if run is not None:
                yield run
            run = PageRange(page, 1, kind)
    if run is not None:
        yield run
