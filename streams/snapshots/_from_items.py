"""Items -> stream records, checking every item as untrusted input.

The inverse of ``_to_items``: ``ItemDecoder.feed`` takes one item and
returns the records it stands for (none while a long byte string is still
arriving in ``more`` items).  It checks the item order (``snapshot`` first,
``index`` last and in agreement with what came before) and every value, so
that any record it returns can be written back as QEMU bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streams import records
from streams.records import StreamRecord
from vmstate.errors import LimitExceededError, MalformedError
from vmstate.limits import Limits
from vmstate.lookup import DescriptionLookup, LookupFunction

from ._fields import ItemFields
from ._index import IndexBuilder, SnapshotIndex, index_from_item
from ._ram_chunks import expand_ram_item
from ._sections import configuration_from_item, device_from_item

__all__ = ["ItemDecoder", "item_fields"]

_HTAB_PTE = 16
_CONTENTS = ("stream", "devices")


def item_fields(item: Any) -> ItemFields:
    """Wrap an item, checking it is a map with a text ``t``."""
    if not isinstance(item, dict) or not isinstance(item.get("t"), str):
        raise MalformedError("an item is not a map with a text 't' key")
    return ItemFields(item, item["t"])


class _Blob:
    """A long byte string arriving in pieces."""

    def __init__(self, kind: str, size: int, first: bytes, make: Callable[[bytes], StreamRecord]) -> None:
        self.kind = kind
        self.size = size
        self.data = bytearray(first)
        self.make = make


class ItemDecoder:
    """Turn a snapshot's items back into stream records, one item at a time."""

    def __init__(self, descriptions: DescriptionLookup | LookupFunction | None, limits: Limits) -> None:
        self._descriptions = descriptions
        self._limits = limits
        self._blob: _Blob | None = None
        self._built: IndexBuilder | None = None
        self.content: str | None = None
        self.producer: str | None = None
        self.index: SnapshotIndex | None = None
        #: the last block list's blocks, which mapped-ram items name
        self._ram_blocks: dict[str, records.RamBlock] = {}

    def feed(self, item: Any) -> list[StreamRecord]:
        """The records of the next item."""
        fields = item_fields(item)
        if self.index is not None:
            raise MalformedError(f"a {fields.kind!r} item follows the index")
        if self._built is None:
            self._open(fields)
            return []
        if fields.kind == "index":
            self._close(fields)
            return []
        self._built.items += 1
        found = self._continue_blob(fields) if self._blob is not None else self._records(fields)
        # The index lists the description version the item names, which may
        # be older than the description that loads it today.
        named = fields.uint("description_version", 32) if fields.kind == "device" else None
        for record in found:
            self._built.add(record, description_version=named)
        return found

    def _open(self, fields: ItemFields) -> None:
        if fields.kind != "snapshot":
            raise MalformedError(f"the first item is {fields.kind!r}, not 'snapshot'")
        content = fields.text("content", 16)
        if content not in _CONTENTS:
            raise MalformedError(f"unknown snapshot content {content!r}")
        self.content = content
        self.producer = fields.text("producer", 256)
        self._built = IndexBuilder(content)
        self._built.items = 1

    def _close(self, fields: ItemFields) -> None:
        assert self._built is not None
        if self._blob is not None:
            raise MalformedError(f"the index comes before the {self._blob.kind} bytes are complete")
        stored = index_from_item(fields, self._limits.max_array_count)
        found = self._built.build()
        if stored != found:
            raise MalformedError(f"the index does not agree with the items: it says {_brief(stored)}, the items hold {_brief(found)}")
        self.index = stored

    def finish(self) -> SnapshotIndex:
        """Check that the items ended with the index; return it."""
        if self.index is None:
            raise MalformedError("the items end without an index")
        return self.index

    def _continue_blob(self, fields: ItemFields) -> list[StreamRecord]:
        blob = self._blob
        assert blob is not None
        if fields.kind != "more":
            raise MalformedError(f"a {fields.kind!r} item where more {blob.kind} bytes belong")
        blob.data += fields.blob("data", blob.size - len(blob.data))
        return self._blob_done()

    def _blob_done(self) -> list[StreamRecord]:
        blob = self._blob
        assert blob is not None
        if len(blob.data) < blob.size:
            return []
        self._blob = None
        return [blob.make(bytes(blob.data))]

    def _start_blob(self, fields: ItemFields, limit: int, limit_name: str, make: Callable[[bytes], StreamRecord]) -> list[StreamRecord]:
        size = fields.uint("size")
        if size > limit:
            raise LimitExceededError(f"{fields.kind} item: {size} bytes exceed limits.{limit_name} = {limit}")
        self._blob = _Blob(fields.kind, size, fields.blob("data", size), make)
        return self._blob_done()

    def _mapped(self, f: ItemFields) -> StreamRecord:
        """A mapped-ram item: a block's entry, a stretch of its bitmap or pages, or bytes the loader skips."""
        limit = self._limits.max_buffer
        if f.kind == "mapped_block":
            return records.MappedRamBlock(_mapped_block(f, self._ram_blocks))
        if f.kind == "mapped_bitmap":
            return records.MappedRamBitmap(_mapped_block(f, self._ram_blocks).name, f.uint("index"), f.blob("data", limit))
        if f.kind == "mapped_fill":
            length = f.uint("length", 48)  # 256 TiB: what a file system holds, a hole included
            return records.MappedRamFill(length, _exact(f, "data", length) if f.has("data") else None)
        if f.kind == "mapped_pages":
            block = _mapped_block(f, self._ram_blocks)
            page_size, count = f.uint("page_size", 32), f.uint("count", 32)
            assert block.mapped is not None
            if page_size != block.mapped.page_size:
                raise f.bad("page_size", f"is {page_size}, the block's header says {block.mapped.page_size}")
            if count * page_size > limit:
                raise LimitExceededError(f"mapped_pages item: {count} pages exceed limits.max_buffer = {limit}")
            return records.RamPageRun(block.name, f.uint("offset"), count, page_size, _exact(f, "data", count * page_size), header=0)
        raise MalformedError(f"unknown item type {f.kind!r}")

    def _records(self, f: ItemFields) -> list[StreamRecord]:
        kind, limits = f.kind, self._limits
        if kind == "ram":
            return list(expand_ram_item(f, limits))
        if kind == "device":
            return [device_from_item(f, self._descriptions, limits)]
        if kind == "section":
            return [_section(f)]
        if kind == "footer":
            return [records.SectionFooter(f.uint("id", 32))]
        if kind == "ram_blocks":
            blocks = _ram_blocks(f, limits)
            self._ram_blocks = {block.name: block for block in blocks.blocks}
            return [blocks]
        if kind == "ram_eos":
            return [records.RamEos(f.uint("value"))]
        if kind == "ram_flush":
            return [records.RamFlush(f.uint("value"))]
        if kind.startswith("mapped_"):
            return [self._mapped(f)]
        if kind == "file_header":
            return [records.FileHeader(f.uint("magic", 32), f.uint("version", 32))]
        if kind == "configuration":
            return [configuration_from_item(f, limits)]
        if kind == "raw":
            reason = f.text("reason")
            return self._start_blob(
                f, limits.max_section_body, "max_section_body", lambda data: records.RawBody(data, reason)
            )
        if kind == "htab_header":
            return [records.HtabHeader(f.sint("value", 32))]
        if kind == "htab_chunk":
            valid = f.uint("valid", 16)
            return [
                records.HtabChunk(f.uint("index", 32), valid, f.uint("invalid", 16), _exact(f, "ptes", valid * _HTAB_PTE))
            ]
        if kind == "htab_end":
            return [records.HtabEnd()]
        if kind == "command":
            return [records.Command(f.uint("command", 16), f.blob("data", 0xFFFF))]
        if kind == "eof":
            return [records.Eof()]
        if kind == "vmdesc":
            return self._start_blob(f, limits.max_vmdesc, "max_vmdesc", records.VmDescription)
        if kind == "trailing":
            return self._start_blob(f, limits.max_section_body, "max_section_body", records.TrailingData)
        raise MalformedError(f"unknown item type {kind!r}")


def _mapped_block(f: ItemFields, blocks: dict[str, records.RamBlock]) -> records.RamBlock:
    name = f.wire_name("block" if f.kind != "mapped_block" else "name")
    block = blocks.get(name)
    if block is None or block.mapped is None:
        raise f.bad("name" if f.kind == "mapped_block" else "block", f"names {name!r}, not a mapped-ram block of the block list")
    return block


def _exact(f: ItemFields, key: str, size: int) -> bytes:
    data = f.blob(key, size)
    if len(data) != size:
        raise f.bad(key, f"holds {len(data)} bytes, not {size}")
    return data


def _section(f: ItemFields) -> records.SectionHeader:
    name = f.text("kind", 16)
    kinds = {records.SectionType.START, records.SectionType.PART, records.SectionType.END, records.SectionType.FULL}
    kind = next((k for k in kinds if k.name == name), None)
    if kind is None:
        raise f.bad("kind", f"is {name!r}, not START, PART, END or FULL")
    section_id = f.uint("id", 32)
    if kind in (records.SectionType.PART, records.SectionType.END):
        return records.SectionHeader(kind, section_id)
    return records.SectionHeader(kind, section_id, f.wire_name("idstr"), f.uint("instance", 32), f.uint("version", 32))


def _ram_blocks(f: ItemFields, limits: Limits) -> records.RamBlockList:
    blocks = []
    for raw in f.list("blocks", limits.max_array_count):
        if not isinstance(raw, dict):
            raise f.bad("blocks", "holds an entry that is not a map")
        block = ItemFields(raw, "ram block")
        blocks.append(records.RamBlock(
            block.wire_name("name"), block.uint("length"), block.optional_uint("page_size"), block.optional_uint("address"),
            _mapped_header(block) if block.has("mapped") else None,
        ))
    total, flags = f.uint("total"), f.uint("flags", 10)
    if total & flags:
        raise f.bad("flags", f"{flags:#x} overlaps the total {total:#x}")
    return records.RamBlockList(total, tuple(blocks), flags)


def _mapped_header(block: ItemFields) -> records.MappedRamHeader:
    header = ItemFields(block.map("mapped"), "mapped-ram header")
    return records.MappedRamHeader(header.uint("version", 32), header.uint("page_size"),
                                   header.uint("bitmap_offset"), header.uint("pages_offset"))


def _brief(index: SnapshotIndex) -> str:
    return f"{index.items} items, {len(index.devices)} devices, {index.ram_pages} + {index.ram_zero_pages} pages"
