"""The ``ram`` section body: page records until EOS (migration/ram.c, version 4).

Each record starts with a be64 whose bits below the target page size are
flags and whose upper bits are an offset in a RAM block (or the total size for
MEM_SIZE).  Without CONTINUE a block name follows.  Pages are yielded one by
one (or a run at a time) and never accumulated.

Page runs are not copied out of a read buffer when the stream is a regular
file: the reader maps it (``mapped``), each ``RamPageRun.raw`` is a
memoryview of the mapping and the byte reader seeks over the run without
reading it.  (A file truncated by another process while it is mapped ends
the process with SIGBUS, as with any mmap reader.)  Other inputs are read
through the byte reader, one copy per run.
"""

from __future__ import annotations

import mmap
import struct
from typing import Iterator, Union

from streams.records import (
    MappedRamBitmap,
    MappedRamBlock,
    MappedRamFill,
    MappedRamHeader,
    RamBlock,
    RamBlockList,
    RamEos,
    RamFlag,
    RamFlush,
    RamPage,
    RamPageRun,
    RamZero,
)
from vmstate.errors import DecodeError, LimitExceededError, MalformedError, TruncatedError, UnsupportedError
from vmstate.limits import Limits
from vmstate.wire import ByteReader

from .mapped_ram import HEADER, RandomAccess, check_header, encode_header, region_records

__all__ = ["RamCodec", "MappedInput", "RamRecord"]

_U64 = 8
# Plain ints: IntFlag arithmetic costs microseconds per page on a hot path.
_CONTINUE = int(RamFlag.CONTINUE)
_EOS = int(RamFlag.EOS)
_MEM_SIZE = int(RamFlag.MEM_SIZE)
_ZERO = int(RamFlag.ZERO)
_PAGE = int(RamFlag.PAGE)
_FLUSH = int(RamFlag.MULTIFD_FLUSH)
_HEADER = struct.Struct(">Q")
#: records checked before a run's full lookahead: short runs (pages among zero pages) stay cheap
_PROBE = 16
_RECORDS: dict[int, struct.Struct] = {}
#: pages gathered into one ``RamPageRun`` at most
MAX_RUN = 256
#: bytes looked ahead for a run: MAX_RUN 4 KiB pages, fewer larger ones (a 1 MiB page size must not read 256 MiB)
_RUN_BYTES = MAX_RUN * (8 + 4096)
_UNSUPPORTED = {
    RamFlag.XBZRLE: "XBZRLE-compressed pages",
    RamFlag.COMPRESS_PAGE: "zlib-compressed pages",
    RamFlag.HOOK: "RDMA hooks",
    RamFlag.FULL: "the obsolete FULL flag",
}


#: bytes of the mapping read past before they leave the process's resident set
_DROP_EVERY = 8 << 20


class MappedInput:
    """A regular file mapped read-only, from the stream's first byte; what the reader passed leaves the RSS."""

    def __init__(self, mapping: mmap.mmap, origin: int) -> None:
        mapping.madvise(mmap.MADV_SEQUENTIAL)
        self._mapping, self._origin = mapping, origin
        self.view = memoryview(mapping)[origin:]
        self._dropped = 0

    def passed(self, offset: int) -> None:
        """The stream before ``offset`` was consumed: drop its pages from this process (the page cache keeps them).

        A view of them stays valid: the kernel maps a file's page again when it is touched (and keeps it).
        """
        end = (self._origin + offset) & ~(mmap.PAGESIZE - 1)
        if end - self._dropped >= _DROP_EVERY:
            self._mapping.madvise(mmap.MADV_DONTNEED, self._dropped, end - self._dropped)
            self._dropped = end


class RamCodec:
    """Decode and encode RAM records; remembers the block list across sections."""

    def __init__(
        self,
        page_size: int,
        *,
        limits: Limits,
        ignore_shared: bool = False,
        batch_pages: bool = False,
        mapped: MappedInput | None = None,
        mapped_ram: RandomAccess | None = None,
    ) -> None:
        """``mapped``: the input file, mapped (page runs are sliced from it, not read); ``mapped_ram``: the
        input of a mapped-ram file (its configuration announces the capability), where blocks' regions are read."""
        if page_size < 1024 or page_size & (page_size - 1) or page_size > limits.max_page_size:
            raise LimitExceededError(f"page size {page_size} is not a power of two in 1 KiB..limits.max_page_size")
        self.page_size = page_size
        self.limits = limits
        self.ignore_shared = ignore_shared
        self.batch_pages = batch_pages
        self.mapped = mapped
        self.mapped_ram = mapped_ram
        self.blocks: dict[str, RamBlock] = {}
        self._last_block: str | None = None

    def decode_body(self, reader: ByteReader) -> Iterator[RamRecord]:
        """Yield the records of one RAM section body, ending with ``RamEos``."""
        mask = self.page_size - 1
        page_size = self.page_size
        while True:
            start = reader.offset
            value = reader.u64()
            flags, address = value & mask, value & ~mask
            kind = flags & ~_CONTINUE
            if kind == _EOS:
                yield RamEos(value)
                return
            if kind == _MEM_SIZE:
                if self.mapped_ram is not None:
                    yield from self._decode_mapped(reader, self.mapped_ram, address)
                else:
                    yield self._decode_blocks(reader, address)
            elif kind == _PAGE or kind == _ZERO:
                block = self._block_name(reader, flags, start)
                if address >= self.blocks[block].length:
                    raise MalformedError(
                        f"page at {address:#x} lies outside RAM block {block!r} of {self.blocks[block].length:#x} bytes",
                        offset=start,
                    )
                if kind == _ZERO:
                    yield RamZero(block, address, flags, reader.u8())
                else:
                    yield RamPage(block, address, flags, reader.read(page_size))
                    if self.batch_pages:
                        yield from self._runs(reader, block, address + page_size)
            elif value == _FLUSH:
                yield RamFlush(value)
            else:
                unsupported = [text for flag, text in _UNSUPPORTED.items() if kind & flag]
                if unsupported:
                    raise UnsupportedError(f"RAM record uses {unsupported[0]} (flags {flags:#x})", offset=start)
                raise MalformedError(f"unknown combination of RAM flags {flags:#x}", offset=start)

    def _runs(self, reader: ByteReader, block: str, address: int) -> Iterator[RamPageRun]:
        """Gather the CONTINUE pages that follow at consecutive offsets into runs."""
        page_size, stride = self.page_size, 8 + self.page_size
        length = self.blocks[block].length
        most = max(1, _RUN_BYTES // stride)
        while address < length:
            count = 0
            for records in (min(_PROBE, most), most):  # a few records first: short runs (pages among zero pages) stay cheap
                ahead = self._window(reader, address, records * stride)
                fits = min(len(ahead) // stride, (length - address) // page_size)
                count = self._matching(ahead, address, fits)
                if count < records:
                    break
            if not count:
                return
            reader.skip(count * stride)
            yield RamPageRun(block, address, count, page_size, ahead[: count * stride])
            address += count * page_size

    def _window(self, reader: ByteReader, address: int, size: int) -> memoryview:
        """Up to ``size`` upcoming bytes: a slice of the mapping, or (when a page record follows) a peek."""
        start = reader.offset
        if self.mapped is not None and start + 8 + self.page_size <= len(self.mapped.view):
            self.mapped.passed(start)  # what came before was consumed: the caller asked for what follows
            return self.mapped.view[start : start + size]
        head = reader.peek(8)  # look at one header before reading a run's worth ahead
        if len(head) < 8 or _HEADER.unpack(head)[0] != address | _PAGE | _CONTINUE:
            return memoryview(b"")
        return memoryview(reader.peek(size))

    def _matching(self, ahead: memoryview, address: int, fits: int) -> int:
        """How many of the first ``fits`` records in ``ahead`` are CONTINUE pages at consecutive offsets from ``address``."""
        page_size = self.page_size
        records = _RECORDS.get(page_size)
        if records is None:
            records = _RECORDS[page_size] = struct.Struct(f">Q{page_size}x")  # one header, then the page skipped
        flags = _PAGE | _CONTINUE
        found = [h for (h,) in records.iter_unpack(ahead[: fits * (8 + page_size)])]
        expected = list(range(address | flags, (address + fits * page_size) | flags, page_size))
        if found == expected:
            return fits
        return next(i for i, (h, e) in enumerate(zip(found, expected)) if h != e)

    def _name(self, reader: ByteReader) -> str:
        length = reader.u8()
        return reader.read(length).decode("latin-1")

    def _block_name(self, reader: ByteReader, flags: int, start: int) -> str:
        if flags & _CONTINUE:
            if self._last_block is None:
                raise MalformedError("CONTINUE flag on the first page record", offset=start)
            return self._last_block
        name = self._name(reader)
        if name not in self.blocks:
            raise MalformedError(f"page for unknown RAM block {name!r}", offset=start)
        self._last_block = name
        return name

    def _decode_blocks(self, reader: ByteReader, total: int) -> RamBlockList:
        blocks: list[RamBlock] = []
        remaining = total
        while remaining > 0:
            if len(blocks) >= self.limits.max_array_count:
                raise LimitExceededError(
                    f"more than limits.max_array_count = {self.limits.max_array_count} RAM blocks",
                    offset=reader.offset,
                )
            start = reader.offset
            name = self._name(reader)
            length = reader.u64()
            address = reader.u64() if self.ignore_shared else None
            if length > remaining:
                raise MalformedError(
                    f"RAM block {name!r} of {length:#x} bytes overruns the announced total {total:#x}",
                    offset=start,
                )
            remaining -= length
            block = RamBlock(name, length, None, address)
            self.blocks[name] = block
            blocks.append(block)
        return RamBlockList(total, tuple(blocks))

    def _decode_mapped(self, reader: ByteReader, access: RandomAccess, total: int) -> Iterator[RamRecord]:
        """A mapped-ram block list: every entry first (they are chained by their headers), then block by block."""
        entries: list[tuple[RamBlock, int]] = []
        position, remaining = reader.offset, total
        while remaining > 0:
            if len(entries) >= self.limits.max_array_count:
                raise LimitExceededError(
                    f"more than limits.max_array_count = {self.limits.max_array_count} RAM blocks", offset=position
                )
            head = access.read_at(position, 1)
            extra = 8 if self.ignore_shared else 0
            body = access.read_at(position + 1, head[0] + 8 + extra + HEADER.size) if head else b""
            if not head or len(body) < head[0] + 8 + extra + HEADER.size:
                raise TruncatedError("the file ends inside a mapped-ram block entry", offset=position)
            name = body[: head[0]].decode("latin-1")
            (length,) = _HEADER.unpack_from(body, head[0])
            address = _HEADER.unpack_from(body, head[0] + 8)[0] if extra else None
            if length > remaining:
                raise MalformedError(
                    f"RAM block {name!r} of {length:#x} bytes overruns the announced total {total:#x}", offset=position
                )
            header = MappedRamHeader(*HEADER.unpack_from(body, head[0] + 8 + extra))
            block = RamBlock(name, length, None, address, header)
            end = position + 1 + len(body)
            try:
                check_header(block, header, end, self.page_size, access.size)
            except DecodeError as error:
                error.add_context(path=(name,))
                raise
            entries.append((block, end))
            self.blocks[name] = block
            remaining -= length
            position = header.pages_offset + length
        yield RamBlockList(total, tuple(block for block, _ in entries))
        view = None if self.mapped is None else self.mapped.view
        for block, end in entries:
            reader.skip(end - reader.offset)
            yield MappedRamBlock(block)
            assert block.mapped is not None
            try:
                for record in region_records(access, block, block.mapped, end, view):
                    yield record
                    reader.skip(_region_size(record))
            except DecodeError as error:
                error.add_context(path=(block.name,))
                raise

    @staticmethod
    def encode(record: RamRecord) -> bytes:
        """Encode one RAM record exactly as it was read (a ``MappedRamFill`` hole as its zeros: writers seek)."""
        if isinstance(record, RamPageRun):  # a view of a mapped file is copied: callers keep bytes
            return record.raw if isinstance(record.raw, bytes) else record.raw.tobytes()
        if isinstance(record, (RamEos, RamFlush)):
            return record.value.to_bytes(_U64, "big")
        if isinstance(record, MappedRamBitmap):
            return record.data
        if isinstance(record, MappedRamFill):
            return bytes(record.length) if record.data is None else record.data
        if isinstance(record, MappedRamBlock):
            return _entry(record.block)
        if isinstance(record, RamBlockList):
            head = (record.total | record.flags).to_bytes(_U64, "big")
            if record.mapped:  # each entry is its MappedRamBlock's, between the blocks' regions
                return head
            return head + b"".join(_entry(block) for block in record.blocks)
        head = (record.offset | record.flags).to_bytes(_U64, "big")
        if not record.flags & RamFlag.CONTINUE:
            name = record.block.encode("latin-1")
            head += bytes((len(name),)) + name
        if isinstance(record, RamZero):
            return head + bytes((record.fill,))
        return head + record.data


RamRecord = Union[RamBlockList, RamPage, RamPageRun, RamZero, RamEos, RamFlush, MappedRamBlock, MappedRamBitmap, MappedRamFill]


def _entry(block: RamBlock) -> bytes:
    """A block's entry in the MEM_SIZE list (its mapped-ram header last, when it has one)."""
    name = block.name.encode("latin-1")
    parts = [bytes((len(name),)), name, block.length.to_bytes(_U64, "big")]
    if block.page_size is not None:
        parts.append(block.page_size.to_bytes(_U64, "big"))
    if block.address is not None:
        parts.append(block.address.to_bytes(_U64, "big"))
    if block.mapped is not None:
        parts.append(encode_header(block.mapped))
    return b"".join(parts)


def _region_size(record: MappedRamBitmap | MappedRamFill | RamPageRun) -> int:
    if isinstance(record, MappedRamBitmap):
        return len(record.data)
    if isinstance(record, MappedRamFill):
        return record.length
    return record.count * record.page_size
