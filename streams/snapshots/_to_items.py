"""Stream records -> items, one pass, bounded memory.

Every ``StreamRecord`` becomes one item named by its ``"t"`` key, except
that page records are grouped into ``ram`` chunks (``_ram_chunks``) and a
long byte string (a raw section body, the vmdesc trailer, trailing bytes) is
split into a first item carrying its total ``size`` and ``more`` items of at
most ``BLOB_CHUNK`` bytes.  The first item is ``snapshot`` (what the file
holds, who wrote it); the last is the ``index`` (``_index``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from streams import records
from streams.records import StreamRecord
from vmstate import __version__
from vmstate.errors import EncodeError

from ._index import IndexBuilder, SnapshotIndex, index_to_item
from ._ram_chunks import RamChunker
from ._sections import configuration_item, device_item

__all__ = ["BLOB_CHUNK", "PRODUCER", "Itemizer"]

BLOB_CHUNK = 1 << 20
PRODUCER = f"vmstate-forge {__version__}"


def _blob(kind: str, data: bytes, **extra: Any) -> Iterator[dict[str, Any]]:
    yield {"t": kind, **extra, "size": len(data), "data": bytes(data[:BLOB_CHUNK])}
    for start in range(BLOB_CHUNK, len(data), BLOB_CHUNK):
        yield {"t": "more", "data": bytes(data[start : start + BLOB_CHUNK])}


def _section(record: records.SectionHeader) -> dict[str, Any]:
    item: dict[str, Any] = {"t": "section", "kind": record.kind.name, "id": record.section_id}
    for key, value in (("idstr", record.idstr), ("instance", record.instance_id), ("version", record.version)):
        if value is not None:
            item[key] = value
    return item


def _ram_blocks(record: records.RamBlockList) -> dict[str, Any]:
    blocks = []
    for block in record.blocks:
        entry: dict[str, Any] = {"name": block.name, "length": block.length}
        if block.page_size is not None:
            entry["page_size"] = block.page_size
        if block.address is not None:
            entry["address"] = block.address
        if block.mapped is not None:
            header = block.mapped
            entry["mapped"] = {"version": header.version, "page_size": header.page_size,
                               "bitmap_offset": header.bitmap_offset, "pages_offset": header.pages_offset}
        blocks.append(entry)
    return {"t": "ram_blocks", "total": record.total, "flags": int(record.flags), "blocks": blocks}


def record_items(record: StreamRecord) -> Iterator[dict[str, Any]]:
    """The item(s) of one record other than a page record."""
    match record:
        case records.DeviceState():
            yield device_item(record)
        case records.SectionHeader():
            yield _section(record)
        case records.SectionFooter(section_id=section_id):
            yield {"t": "footer", "id": section_id}
        case records.RamBlockList():
            yield _ram_blocks(record)
        case records.RamEos(value=value):
            yield {"t": "ram_eos", "value": value}
        case records.RamFlush(value=value):
            yield {"t": "ram_flush", "value": value}
        case records.MappedRamBlock(block=block):
            yield {"t": "mapped_block", "name": block.name}
        case records.MappedRamBitmap():
            yield {"t": "mapped_bitmap", "block": record.block, "index": record.index, "data": bytes(record.data)}
        case records.MappedRamFill(length=length, data=data):
            yield {"t": "mapped_fill", "length": length} if data is None else {"t": "mapped_fill", "length": length, "data": bytes(data)}
        case records.RamPageRun(header=0):  # mapped-ram pages: no record headers to write back
            yield {"t": "mapped_pages", "block": record.block, "offset": record.offset, "count": record.count,
                   "page_size": record.page_size, "data": bytes(record.raw)}
        case records.FileHeader(magic=magic, version=version):
            yield {"t": "file_header", "magic": magic, "version": version}
        case records.Configuration():
            yield configuration_item(record)
        case records.RawBody(data=data, reason=reason):
            yield from _blob("raw", data, reason=reason)
        case records.HtabHeader(value=value):
            yield {"t": "htab_header", "value": value}
        case records.HtabChunk():
            yield {"t": "htab_chunk", "index": record.index, "valid": record.n_valid, "invalid": record.n_invalid, "ptes": bytes(record.ptes)}
        case records.HtabEnd():
            yield {"t": "htab_end"}
        case records.Command(command=command, data=data):
            yield {"t": "command", "command": command, "data": bytes(data)}
        case records.Eof():
            yield {"t": "eof"}
        case records.VmDescription(raw=raw):
            yield from _blob("vmdesc", raw)
        case records.TrailingData(data=data):
            yield from _blob("trailing", data)
        case _:
            raise EncodeError(f"not a stream record: {type(record).__name__}")


def _single_pages(stream: Iterable[StreamRecord]) -> Iterator[StreamRecord]:
    """Records with batched RAM pages (``RamPageRun``) expanded to one ``RamPage`` each (mapped-ram runs stay)."""
    for record in stream:
        if isinstance(record, records.RamPageRun) and record.header:
            yield from record.expand()
        else:
            yield record


class Itemizer:
    """Turn records into items; ``index`` is complete once ``items`` is exhausted."""

    def __init__(self, content: str, producer: str = PRODUCER) -> None:
        self._index = IndexBuilder(content)
        self._producer = producer
        self.index: SnapshotIndex | None = None

    def items(self, stream: Iterable[StreamRecord]) -> Iterator[dict[str, Any]]:
        """Yield every item, the opening ``snapshot`` item first and the ``index`` last."""
        builder = self._index
        yield self._count({"t": "snapshot", "content": builder.content, "producer": self._producer})
        chunker = RamChunker()
        for record in _single_pages(stream):
            builder.add(record)
            if isinstance(record, (records.RamPage, records.RamZero)):
                done = chunker.add(record)
                if done is not None:
                    yield self._count(done)
                continue
            pending = chunker.flush()
            if pending is not None:
                yield self._count(pending)
            for item in record_items(record):
                yield self._count(item)
        pending = chunker.flush()
        if pending is not None:
            yield self._count(pending)
        self.index = builder.build()
        yield index_to_item(self.index)

    def _count(self, item: dict[str, Any]) -> dict[str, Any]:
        self._index.items += 1
        return item
