"""Lay a stream's RAM out the other way: a plain stream as a mapped-ram file, a mapped-ram file as a plain stream.

``to_plain`` is a filter on records: the configuration loses the
``mapped-ram`` capability, each block's marked pages become PAGE records
(the first of a block naming it, the others CONTINUE) and its unmarked pages
ZERO records, in the RAM section that held the block's region.

``MappedRamWriter`` does what QEMU's ``migrate file:`` does with the
capability on (migration/ram.c ``mapped_ram_setup_ramblock``): each block's
entry is followed by its header, the bitmap right after it and the pages at
the next 1 MiB boundary, the stream continuing after the block's pages; a
page is written at its fixed offset whenever it comes by (a later copy wins,
as on load), a zero page clears its bit, and the bitmaps are written last.
The file must be seekable; what is never written stays a hole.
"""

from __future__ import annotations

import json
import os
from typing import BinaryIO, Iterable, Iterator

import attrs

from streams import records
from streams.records import StreamRecord
from vmstate.description import Record
from vmstate.errors import EncodeError, LimitExceededError
from vmstate.limits import DEFAULT_LIMITS, Limits

from .configuration import CAPABILITIES_NAME, page_size_of, with_capability, without_capability
from .mapped_ram import HEADER, HEADER_VERSION
from .writer import StreamWriter

__all__ = ["to_plain", "MappedRamWriter", "LAYOUTS", "ALIGNMENT"]

#: ``MAPPED_RAM_FILE_OFFSET_ALIGNMENT``: where a block's pages start
ALIGNMENT = 0x100000
LAYOUTS = ("plain", "mapped-ram")
_MAPPED = b"mapped-ram"
_PAGE = int(records.RamFlag.PAGE)
_ZERO = int(records.RamFlag.ZERO)
_CONTINUE = int(records.RamFlag.CONTINUE)


def _configuration(record: records.Configuration, record_: Record) -> records.Configuration:
    return records.Configuration(record.description, record_)


def _vmdesc(vmdesc: records.VmDescription, configuration: records.Configuration) -> records.VmDescription:
    """The vmdesc with its ``configuration`` entry describing ``configuration`` (QEMU >= 9.0 writes one).

    QEMU's JSON writer separates as ``json.dumps`` does; a vmdesc it would not
    write back identically is kept as it was.
    """
    try:
        parsed = json.loads(vmdesc.raw)
    except ValueError:
        return vmdesc
    if not isinstance(parsed, dict) or not isinstance(parsed.get("configuration"), dict):
        return vmdesc
    if json.dumps(parsed).encode() != vmdesc.raw:
        return vmdesc
    entry = dict(parsed["configuration"])
    entry.pop("subsections", None)
    subsections = []
    for name, sub in configuration.record.subsections.items():
        if name == CAPABILITIES_NAME:
            capabilities = sub.fields["capabilities"]
            subsections.append({"vmsd_name": name, "version": 1, "fields": [
                {"name": "caps_count", "type": "uint32", "size": 4},
                {"name": "capabilities", "type": "capability", "size": sum(1 + len(c) for c in capabilities)}]})
        elif isinstance(parsed["configuration"].get("subsections"), list):
            subsections.extend(s for s in parsed["configuration"]["subsections"] if isinstance(s, dict) and s.get("vmsd_name") == name)
    if subsections:
        entry["subsections"] = subsections
    parsed["configuration"] = entry
    return records.VmDescription(json.dumps(parsed).encode())


def to_plain(stream: Iterable[StreamRecord]) -> Iterator[StreamRecord]:
    """The records of the same stream with its RAM as QEMU writes it without mapped-ram."""
    configuration: records.Configuration | None = None
    block: records.RamBlock | None = None
    next_page = 0  # the first page offset of ``block`` not yet written out
    named = False

    def finish_block(upto: int) -> Iterator[StreamRecord]:
        nonlocal next_page, named
        assert block is not None and block.mapped is not None
        for offset in range(next_page, upto, block.mapped.page_size):
            yield records.RamZero(block.name, offset, _ZERO | (_CONTINUE if named else 0), 0)
            named = True
        next_page = max(next_page, upto)

    for record in stream:
        match record:
            case records.Configuration():
                configuration = _configuration(record, without_capability(record.record, _MAPPED))
                yield configuration
            case records.RamBlockList() if record.mapped:
                yield attrs.evolve(record, blocks=tuple(attrs.evolve(b, mapped=None) for b in record.blocks))
            case records.MappedRamBlock():
                if block is not None:
                    yield from finish_block(block.length)
                block, next_page, named = record.block, 0, False
            case records.RamPageRun(header=0):
                yield from finish_block(record.offset)
                for offset, data in record.pages():
                    yield records.RamPage(record.block, offset, _PAGE | (_CONTINUE if named else 0), bytes(data))
                    named = True
                next_page = record.offset + record.count * record.page_size
            case records.MappedRamBitmap() | records.MappedRamFill():
                continue
            case records.RamEos() if block is not None:
                yield from finish_block(block.length)
                block = None
                yield record
            case records.VmDescription() if configuration is not None:
                yield _vmdesc(record, configuration)
            case _:
                yield record


class MappedRamWriter:
    """Write a plain stream's records as a mapped-ram file into a seekable ``sink``."""

    def __init__(self, sink: BinaryIO, *, limits: Limits = DEFAULT_LIMITS) -> None:
        if not sink.seekable():
            raise EncodeError("a mapped-ram file is written at fixed offsets: the output must be seekable")
        self._sink, self._limits = sink, limits
        self._writer = StreamWriter(sink)
        self._blocks: dict[str, tuple[records.RamBlock, bytearray]] = {}
        self._configuration: records.Configuration | None = None

    @property
    def offset(self) -> int:
        return self._writer.offset

    def write_all(self, stream: Iterable[StreamRecord]) -> None:
        """Write every record, then the bitmaps."""
        for record in stream:
            self.write(record)
        self._writer.finish()
        for block, bitmap in self._blocks.values():
            assert block.mapped is not None
            self._put(block.mapped.bitmap_offset, bytes(bitmap))

    def write(self, record: StreamRecord) -> None:
        match record:
            case records.Configuration():
                self._configuration = _configuration(record, with_capability(record.record, _MAPPED))
                self._writer.write(self._configuration)
            case records.RamBlockList():
                self._lay_out(record)
            case records.RamPage():
                self._page(record.block, record.offset, record.data)
            case records.RamPageRun():
                for offset, data in record.pages():
                    self._page(record.block, offset, data)
            case records.RamZero():
                self._zero(record)
            case records.MappedRamBlock() | records.MappedRamBitmap() | records.MappedRamFill():
                raise EncodeError("the stream is a mapped-ram file already")
            case records.VmDescription() if self._configuration is not None:
                self._writer.write(_vmdesc(record, self._configuration))
            case _:
                self._writer.write(record)

    def _put(self, offset: int, data: bytes | memoryview) -> None:
        """Write ``data`` at ``offset`` of the file, leaving the stream's position alone."""
        try:
            fd = self._sink.fileno()
        except (AttributeError, OSError, ValueError):
            here = self._sink.tell()
            self._sink.seek(offset)
            self._sink.write(data)
            self._sink.seek(here)
            return
        if os.pwrite(fd, data, offset) != len(data):
            raise OSError(f"short write at {offset:#x}")

    def _lay_out(self, blocks: records.RamBlockList) -> None:
        """Each block's entry and header, its region left a hole; the stream goes on after the last one."""
        if blocks.mapped:
            raise EncodeError("the stream is a mapped-ram file already")
        page_size = self._page_size()
        position = self.offset + 8
        laid: list[records.RamBlock] = []
        for block in blocks.blocks:
            if block.length % page_size:
                raise EncodeError(f"RAM block {block.name!r} of {block.length:#x} bytes is not a whole number of pages")
            entry = 1 + len(block.name.encode("latin-1")) + 8 + (8 if block.page_size is not None else 0) \
                + (8 if block.address is not None else 0) + HEADER.size
            bitmap_offset = position + entry
            header = records.MappedRamHeader(HEADER_VERSION, page_size, bitmap_offset, 0)
            bitmap_size = header.bitmap_size(block.length)
            if bitmap_size > self._limits.max_buffer:
                raise LimitExceededError(f"RAM block {block.name!r}: its bitmap of {bitmap_size} bytes exceeds "
                                         f"limits.max_buffer = {self._limits.max_buffer}")
            pages_offset = -(-(bitmap_offset + bitmap_size) // ALIGNMENT) * ALIGNMENT
            mapped = attrs.evolve(block, mapped=attrs.evolve(header, pages_offset=pages_offset))
            laid.append(mapped)
            self._blocks[block.name] = (mapped, bytearray(bitmap_size))
            position = pages_offset + block.length
        head = attrs.evolve(blocks, blocks=tuple(laid))
        self._writer.write(head)  # the be64 alone: a mapped list's entries are its blocks'
        for block in laid:
            assert block.mapped is not None
            self._writer.write(records.MappedRamBlock(block))
            self._writer.write(records.MappedRamFill(block.mapped.pages_offset + block.length - self.offset))

    def _page_size(self) -> int:
        configuration = self._configuration
        if configuration is not None:
            announced = page_size_of(configuration.record)
            if announced is not None:
                return announced
        return 4096

    def _page(self, name: str, offset: int, data: bytes | memoryview) -> None:
        block, bitmap = self._slot(name, offset)
        assert block.mapped is not None
        if len(data) != block.mapped.page_size:
            raise EncodeError(f"a page of {len(data)} bytes in RAM block {name!r} of {block.mapped.page_size}-byte pages")
        self._put(block.mapped.pages_offset + offset, data)
        index = offset // block.mapped.page_size
        bitmap[index >> 3] |= 1 << (index & 7)

    def _zero(self, record: records.RamZero) -> None:
        block, bitmap = self._slot(record.block, record.offset)
        assert block.mapped is not None
        if record.fill:  # only an all-zero page is left out
            self._page(record.block, record.offset, bytes((record.fill,)) * block.mapped.page_size)
            return
        index = record.offset // block.mapped.page_size
        bitmap[index >> 3] &= ~(1 << (index & 7)) & 0xFF
        # a page written before and zero now: QEMU only clears the bit; its stale bytes are never loaded

    def _slot(self, name: str, offset: int) -> tuple[records.RamBlock, bytearray]:
        found = self._blocks.get(name)
        if found is None:
            raise EncodeError(f"a page of RAM block {name!r}, which the block list did not announce")
        if offset >= found[0].length:
            raise EncodeError(f"page at {offset:#x} lies outside RAM block {name!r} of {found[0].length:#x} bytes")
        return found

