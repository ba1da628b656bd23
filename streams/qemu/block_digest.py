"""SHA-256 of each RAM block's bytes, as the guest would have them after loading the stream.

The digest equals ``sha256sum`` of the block's file from ``vmstate extract``:
the block's length in bytes, pages at their offsets, pages never sent as
zeros.  It is computed as pages stream past, so memory stays bounded, which
works when each block's pages arrive in increasing offset order (the first
precopy pass of ``ram_save_iterate``, migration/ram.c, walks every block
that way; a paused VM sends nothing else).  A page that goes back (a dirty
page sent again) or lies past the block's end makes the digest unavailable,
with the reason.  So does a block that would take the bytes hashed past
``MAX_HASHED_BYTES``: lengths come from the stream, and hashing them (unsent
pages are hashed as zeros) must not take time an input can choose.
"""

from __future__ import annotations

import hashlib
from typing import Any, Callable, Iterable, Iterator

from .records import RamBlockList, RamPage, RamPageRun, RamZero, StreamRecord

__all__ = ["BlockDigests", "MAX_HASHED_BYTES"]

#: block bytes hashed per stream at most (unsent pages included): 4 GiB, ~7 s at 0.6 GB/s
MAX_HASHED_BYTES = 4 << 30
_ZEROS = bytes(1 << 20)


class _Block:
    def __init__(self, length: int) -> None:
        self.length = length
        self.hasher = hashlib.sha256()
        self.position = 0
        self.unavailable: str | None = None


class BlockDigests:
    """Feed a stream's records; ``results()`` gives each block's digest or why there is none."""

    def __init__(self, page_size: Callable[[], int], budget: int = MAX_HASHED_BYTES) -> None:
        self._page_size = page_size
        self._budget = budget
        self._blocks: dict[str, _Block] = {}
        self._fills: dict[tuple[int, int], bytes] = {}

    def tee(self, records: Iterable[StreamRecord]) -> Iterator[StreamRecord]:
        """Pass ``records`` through, feeding each one."""
        for record in records:
            self.feed(record)
            yield record

    def feed(self, record: StreamRecord) -> None:
        """Take one record; only the block list and pages matter."""
        if isinstance(record, RamBlockList):
            for block in record.blocks:
                if block.name not in self._blocks:
                    self._blocks[block.name] = self._reserve(block.length)
        elif isinstance(record, RamPage):
            self._add(record.block, record.offset, record.data)
        elif isinstance(record, RamPageRun):
            for offset, data in record.pages():
                self._add(record.block, offset, data)
        elif isinstance(record, RamZero):
            size = self._page_size()
            key = (record.fill, size)
            if key not in self._fills:
                self._fills[key] = bytes((record.fill,)) * size
            self._add(record.block, record.offset, self._fills[key])

    def _reserve(self, length: int) -> _Block:
        """A block whose whole length is taken from the budget up front (or refused)."""
        block = _Block(length)
        if length > self._budget:
            block.unavailable = f"the blocks are longer than the {MAX_HASHED_BYTES >> 30} GiB a dump hashes"
        else:
            self._budget -= length
        return block

    def _add(self, name: str, offset: int, data: bytes | memoryview) -> None:
        block = self._blocks.get(name)
        if block is None:
            block = self._blocks[name] = _Block(0)
            block.unavailable = "the block list did not announce this block"
        if block.unavailable is not None:
            return
        if offset < block.position:
            block.unavailable = f"page {offset:#x} came after the bytes up to {block.position:#x} (sent again or out of order)"
        elif offset + len(data) > block.length:
            block.unavailable = f"page {offset:#x} lies past the block's length {block.length:#x}"
        else:  # within the length reserved: hashing stays within the budget
            self._zeros(block, offset - block.position)
            self._hash(block, data)

    @staticmethod
    def _hash(block: _Block, data: bytes | memoryview) -> None:
        block.hasher.update(data)
        block.position += len(data)

    def _zeros(self, block: _Block, count: int) -> None:
        view = memoryview(_ZEROS)
        while count > 0:
            step = min(count, len(_ZEROS))
            self._hash(block, view[:step])
            count -= step

    def results(self) -> dict[str, dict[str, Any]]:
        """Per block: ``{"content_sha256": hex}`` or ``{"content_sha256": None, "content_sha256_unavailable": why}``."""
        out: dict[str, dict[str, Any]] = {}
        for name, block in self._blocks.items():
            if block.unavailable is None and block.position < block.length:
                self._zeros(block, block.length - block.position)
            if block.unavailable is None:
                out[name] = {"content_sha256": block.hasher.hexdigest()}
            else:
                out[name] = {"content_sha256": None, "content_sha256_unavailable": block.unavailable}
        return out
