"""RAM page records grouped into bounded items, and expanded back.

Consecutive page records of one RAM block (full pages and uniform pages,
in their wire order) share one ``ram`` item of at most ``RAM_CHUNK_BYTES``
of page data and ``RAM_CHUNK_RECORDS`` records::

    {"t": "ram", "block": "pc.ram", "page_size": 4096,
     "offsets": [...], "flags": [...],     # one per record, wire order
     "fills": b"...",                      # one byte per uniform page
     "data": b"..."}                       # page_size bytes per full page

So pages stream through one chunk at a time in both directions, and
``flags`` keeps each record's CONTINUE bit, so QEMU's bytes come back exactly.
"""

from __future__ import annotations

from typing import Any

from streams.records import RamFlag, RamPage, RamZero
from vmstate.errors import LimitExceededError, MalformedError
from vmstate.limits import Limits

from ._fields import ItemFields

__all__ = ["RAM_CHUNK_BYTES", "RAM_CHUNK_RECORDS", "RamChunker", "expand_ram_item"]

RAM_CHUNK_BYTES = 1 << 20
RAM_CHUNK_RECORDS = 4096
_PAGE_FLAGS = frozenset((RamFlag.PAGE, RamFlag.PAGE | RamFlag.CONTINUE))
_ZERO_FLAGS = frozenset((RamFlag.ZERO, RamFlag.ZERO | RamFlag.CONTINUE))
#: QEMU's smallest target page is 1 KiB: the flags live in the low 10 bits
_OFFSET_ALIGN = 1024


class RamChunker:
    """Collect page records into ``ram`` items."""

    def __init__(self) -> None:
        self._clear()

    def _clear(self) -> None:
        self._block: str | None = None
        self._page_size = 0
        self._offsets: list[int] = []
        self._flags: list[int] = []
        self._fills = bytearray()
        self._data: list[bytes] = []
        self._bytes = 0

    def _fits(self, record: RamPage | RamZero) -> bool:
        if record.block != self._block or len(self._offsets) >= RAM_CHUNK_RECORDS:
            return False
        if isinstance(record, RamPage):
            if self._page_size and len(record.data) != self._page_size:
                return False
            return self._bytes + len(record.data) <= RAM_CHUNK_BYTES
        return True

    def add(self, record: RamPage | RamZero) -> dict[str, Any] | None:
        """Take one record; return the previous chunk if this one does not fit in it."""
        done = self.flush() if self._offsets and not self._fits(record) else None
        self._block = record.block
        self._offsets.append(record.offset)
        self._flags.append(record.flags)
        if isinstance(record, RamZero):
            self._fills.append(record.fill)
        else:
            self._page_size = len(record.data)
            self._data.append(bytes(record.data))
            self._bytes += len(record.data)
        return done

    def flush(self) -> dict[str, Any] | None:
        """The chunk collected so far, if any."""
        if not self._offsets:
            return None
        item = {
            "t": "ram",
            "block": self._block,
            "page_size": self._page_size,
            "offsets": self._offsets,
            "flags": self._flags,
            "fills": bytes(self._fills),
            "data": b"".join(self._data),
        }
        self._clear()
        return item


def expand_ram_item(item: ItemFields, limits: Limits) -> list[RamPage | RamZero]:
    """The page records of one (untrusted) ``ram`` item."""
    block = item.wire_name("block")
    page_size = item.uint("page_size", 32)
    if page_size > limits.max_page_size:
        raise LimitExceededError(f"ram item: page size {page_size} exceeds limits.max_page_size = {limits.max_page_size}")
    offsets = item.list("offsets", limits.max_array_count)
    flags = item.list("flags", limits.max_array_count)
    fills = item.blob("fills", limits.max_array_count)
    data = item.blob("data", limits.max_buffer)
    if len(flags) != len(offsets):
        raise MalformedError(f"ram item: {len(offsets)} offsets but {len(flags)} flags")
    records: list[RamPage | RamZero] = []
    pages = zeros = 0
    for i, (offset, flag) in enumerate(zip(offsets, flags)):
        if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset < 1 << 64 or offset % _OFFSET_ALIGN:
            raise MalformedError(f"ram item: offsets[{i}] = {offset!r} is not a page offset")
        if isinstance(flag, bool) or not isinstance(flag, int):
            raise MalformedError(f"ram item: flags[{i}] = {flag!r} is not an integer")
        if flag in _ZERO_FLAGS:
            if zeros >= len(fills):
                raise MalformedError(f"ram item: more uniform pages than the {len(fills)} fill bytes")
            records.append(RamZero(block, offset, flag, fills[zeros]))
            zeros += 1
        elif flag in _PAGE_FLAGS:
            start = pages * page_size
            if page_size == 0 or start + page_size > len(data):
                raise MalformedError(f"ram item: more full pages than {len(data)} bytes of data hold")
            records.append(RamPage(block, offset, flag, data[start : start + page_size]))
            pages += 1
        else:
            raise MalformedError(f"ram item: flags[{i}] = {flag!r} is neither a full nor a uniform page")
    if zeros != len(fills) or pages * page_size != len(data):
        raise MalformedError(f"ram item: {len(fills)} fill bytes and {len(data)} data bytes for {zeros} uniform and {pages} full pages")
    return records
