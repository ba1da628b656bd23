"""The RAM blocks of a mapped-ram file (QEMU >= 9.0, capability ``mapped-ram``, ``migrate file:``).

docs/devel/migration/mapped-ram.rst and migration/ram.c: after each block's
entry in the MEM_SIZE list comes a ``MappedRamHeader`` (be32 version, be64
page size, bitmap offset, pages offset); the stream itself then continues at
``pages_offset + length``, so the file holds, block after block, the entry,
the bitmap (written at the end of the migration), padding up to a 1 MiB
boundary and the pages at fixed offsets (page ``i`` at ``pages_offset + i *
page_size``).  The loader reads the pages whose bitmap bit is set and leaves
the others zero; QEMU never writes a zero page, so they are holes.

Offsets and lengths come from the file: each is checked against the file's
size and the layout before anything is read, the bitmap is read a chunk at a
time (twice: once as records, once to find the pages), and holes are skipped
with ``SEEK_DATA`` where the file has them, never read.
"""

from __future__ import annotations

import io
import os
import re
import struct
from typing import BinaryIO, Iterator

from streams.records import MappedRamBitmap, MappedRamFill, MappedRamHeader, RamBlock, RamPageRun
from vmstate.errors import MalformedError, TruncatedError, UnsupportedError

__all__ = ["HEADER", "HEADER_VERSION", "RandomAccess", "check_header", "region_records", "encode_header", "zero_difference"]

#: ``MappedRamHeader``: packed be32 version, be64 page size, bitmap offset, pages offset
HEADER = struct.Struct(">IQQQ")
#: ``MAPPED_RAM_HDR_VERSION``
HEADER_VERSION = 1
#: bitmap bytes per record and per pass over the pages (524,288 pages of one block)
_BITMAP_CHUNK = 64 << 10
#: pages per ``RamPageRun`` (1 MiB of 4 KiB pages)
_RUN_PAGES = 256
#: bytes of a stretch the loader does not read that are looked at at once
_FILL_CHUNK = 1 << 20
_NOT_ZERO = re.compile(rb"[^\x00]")
_NOT_FF = re.compile(rb"[^\xff]")


class RandomAccess:
    """Reads at stream offsets of a seekable file, leaving its position where it was; knows its holes."""

    def __init__(self, file: BinaryIO, origin: int) -> None:
        self._file, self._origin = file, origin
        here = file.tell()
        self.size = file.seek(0, io.SEEK_END) - origin
        file.seek(here)
        self._fd: int | None = None
        if isinstance(file, (io.BufferedReader, io.FileIO)):
            try:
                self._fd = file.fileno()
            except (OSError, ValueError):
                self._fd = None

    def read_at(self, offset: int, size: int) -> bytes:
        """``size`` bytes at ``offset`` (fewer at the end of the file)."""
        if self._fd is not None:
            return os.pread(self._fd, size, self._origin + offset)
        here = self._file.tell()
        try:
            self._file.seek(self._origin + offset)
            return self._file.read(size)
        finally:
            self._file.seek(here)

    def next_hole(self, offset: int, end: int) -> int:
        """The first offset in ``offset..end`` that lies in a hole (``end`` if none does, or holes are not known)."""
        if self._fd is None:
            return end
        here = os.lseek(self._fd, 0, os.SEEK_CUR)
        try:
            found = os.lseek(self._fd, self._origin + offset, os.SEEK_HOLE) - self._origin
        except OSError:
            return end
        finally:
            os.lseek(self._fd, here, os.SEEK_SET)
        return min(max(found, offset), end)

    def next_data(self, offset: int, end: int) -> int:
        """The first offset in ``offset..end`` that may hold data (``end`` if all of it is a hole)."""
        if self._fd is None:
            return offset
        here = os.lseek(self._fd, 0, os.SEEK_CUR)
        try:
            found = os.lseek(self._fd, self._origin + offset, os.SEEK_DATA) - self._origin
        except OSError:  # ENXIO: only a hole up to the end of the file; EINVAL: no SEEK_DATA here
            return end if os.fstat(self._fd).st_size <= self._origin + offset else offset
        finally:
            os.lseek(self._fd, here, os.SEEK_SET)
        return min(max(found, offset), end)


def encode_header(header: MappedRamHeader) -> bytes:
    """The header's 28 bytes."""
    return HEADER.pack(header.version, header.page_size, header.bitmap_offset, header.pages_offset)


def check_header(block: RamBlock, header: MappedRamHeader, end: int, page_size: int, size: int) -> None:
    """Refuse a header whose regions QEMU would not have written there; ``end``: where the header ends."""
    name = block.name
    if header.version != HEADER_VERSION:
        raise UnsupportedError(f"mapped-ram header version {header.version} of RAM block {name!r}, "
                               f"expected {HEADER_VERSION}", offset=end - HEADER.size)
    if header.page_size != page_size:
        raise MalformedError(f"mapped-ram page size {header.page_size:#x} of RAM block {name!r}, "
                             f"the stream's is {page_size:#x}", offset=end - HEADER.size)
    if block.length % page_size:
        raise MalformedError(f"RAM block {name!r} of {block.length:#x} bytes is not a whole number of pages",
                             offset=end - HEADER.size)
    bitmap_end = header.bitmap_offset + header.bitmap_size(block.length)
    if header.bitmap_offset < end or bitmap_end > header.pages_offset:
        raise MalformedError(f"bitmap of RAM block {name!r} at {header.bitmap_offset:#x}..{bitmap_end:#x} does not "
                             f"lie between its header's end {end:#x} and its pages at {header.pages_offset:#x}",
                             offset=end - HEADER.size + 12)
    if header.pages_offset % page_size:  # the loader's own check (parse_ramblock_mapped_ram)
        raise MalformedError(f"pages of RAM block {name!r} at {header.pages_offset:#x} are not page-aligned",
                             offset=end - HEADER.size + 20)
    if header.pages_offset + block.length > size:
        raise TruncatedError(f"pages of RAM block {name!r} end at {header.pages_offset + block.length:#x}, "
                             f"past the file's end {size:#x}", offset=end - HEADER.size + 20)


def _fill(access: RandomAccess, start: int, end: int) -> Iterator[MappedRamFill]:
    """The bytes ``start..end`` the loader does not read: holes skipped, data looked at a chunk at a time."""
    zeros = 0
    while start < end:
        data_at = access.next_data(start, end)
        zeros += data_at - start
        start = data_at
        if start >= end:
            break
        chunk = access.read_at(start, min(end - start, _FILL_CHUNK))
        if len(chunk) < min(end - start, _FILL_CHUNK):
            raise TruncatedError(f"the file ends at {start + len(chunk):#x}, inside a mapped-ram block", offset=start)
        if chunk.count(0) == len(chunk):
            zeros += len(chunk)
        else:
            if zeros:
                yield MappedRamFill(zeros)
                zeros = 0
            yield MappedRamFill(len(chunk), chunk)
        start += len(chunk)
    if zeros:
        yield MappedRamFill(zeros)


def _runs(data: bytes, count: int) -> Iterator[tuple[int, int, bool]]:
    """(first, count, set) runs of the first ``count`` bits of ``data`` (bit 0 of byte 0 first).

    Whole bytes of 00 or ff are skipped by one regex search, so the cost is
    the number of runs, not of pages.
    """
    bit = 0
    while bit < count:
        is_set = (data[bit >> 3] >> (bit & 7)) & 1
        pattern = _NOT_FF if is_set else _NOT_ZERO
        end = bit + 1
        while end < count:
            if not end & 7:
                found = pattern.search(data, end >> 3)
                beyond = len(data) * 8 if found is None else found.start() * 8
                if beyond > end:
                    end = beyond
                    continue
            if (data[end >> 3] >> (end & 7)) & 1 != is_set:
                break
            end += 1
        end = min(end, count)
        yield bit, end - bit, bool(is_set)
        bit = end


def region_records(
    access: RandomAccess, block: RamBlock, header: MappedRamHeader, start: int, mapped: memoryview | None
) -> Iterator[MappedRamBitmap | MappedRamFill | RamPageRun]:
    """The records of one block's region, ``start`` (its header's end) to ``pages_offset + length``, in file order."""
    name, page_size = block.name, header.page_size
    pages = block.length // page_size
    bitmap_size = header.bitmap_size(block.length)
    yield from _fill(access, start, header.bitmap_offset)
    for index in range(0, bitmap_size, _BITMAP_CHUNK):
        data = access.read_at(header.bitmap_offset + index, min(_BITMAP_CHUNK, bitmap_size - index))
        yield MappedRamBitmap(name, index, data)
    yield from _fill(access, header.bitmap_offset + bitmap_size, header.pages_offset)
    for index in range(0, bitmap_size, _BITMAP_CHUNK):
        data = access.read_at(header.bitmap_offset + index, min(_BITMAP_CHUNK, bitmap_size - index))
        first_page = index * 8
        count = min(len(data) * 8, pages - first_page)
        for first, length, is_set in _runs(data, count):
            at = header.pages_offset + (first_page + first) * page_size
            if not is_set:
                yield from _fill(access, at, at + length * page_size)
                continue
            for run in range(0, length, _RUN_PAGES):
                n = min(_RUN_PAGES, length - run)
                where = at + run * page_size
                if access.next_hole(where, where + n * page_size) < where + n * page_size:
                    # QEMU writes every page it marks (a zero page it leaves out and unmarks): a marked hole is no page
                    raise MalformedError(f"RAM block {name!r}: a page the bitmap marks at {where:#x} lies in a hole "
                                         "of the file", offset=where)
                raw = mapped[where : where + n * page_size] if mapped is not None else access.read_at(where, n * page_size)
                yield RamPageRun(name, (first_page + first + run) * page_size, n, page_size, raw, header=0)


def zero_difference(file: BinaryIO, length: int) -> int | None:
    """Consume ``length`` bytes of ``file``; where the first non-zero one is (a hole is skipped, not read)."""
    start = file.tell()
    access = RandomAccess(file, 0)
    end = start + length
    found: int | None = None if access.size >= end else max(0, access.size - start)
    position = start
    while position < end and found is None:
        position = access.next_data(position, end)
        if position >= end:
            break
        file.seek(position)
        chunk = file.read(min(_FILL_CHUNK, end - position))
        if not chunk:
            break
        if chunk.count(0) != len(chunk):
            found = position - start + len(chunk) - len(chunk.lstrip(b"\0"))
        position += len(chunk)
    file.seek(end)
    return found
