"""A digest of each RAM block's bytes, as the guest would have them after loading the stream.

The digest is of the block's contents: its length in bytes, pages at their
offsets, pages never sent as zeros, in address order, so it equals the
digest of the block's file from ``vmstate extract`` (``sha256sum`` of it,
with ``DIGESTS["sha256"]``).  XXH3-128 by default (``DEFAULT_DIGEST``: 0.1 s
per GiB in 4 KiB pages here, SHA-256 0.9 s), SHA-256 on request.  It is
computed as pages stream past, so memory stays bounded (zeros are hashed a
chunk at a time, never a block-sized buffer), which
works when each block's pages arrive in increasing offset order (the first
precopy pass of ``ram_save_iterate``, migration/ram.c, walks every block
that way; a paused VM sends nothing else).  A page that goes back (a dirty
page sent again) or lies past the block's end makes the digest unavailable,
with the reason.  Hashing is charged against a budget that grows with the
stream read so far (``HASH_BASE`` plus ``HASH_RATIO`` bytes per stream byte):
lengths and the page size come from the stream, and pages never sent are
hashed as zeros, so the time must follow the input's size, not its claims.
A QEMU stream sends every page, a zero page as a 9-byte record (4,096 bytes
hashed: a ratio of 455); a block whose digest would take more is unavailable.
"""

from __future__ import annotations

import hashlib
from typing import Any, Callable, Iterable, Iterator, Protocol

import xxhash

from streams.records import RamBlockList, RamPage, RamPageRun, RamZero, StreamRecord

__all__ = ["BlockDigests", "DIGESTS", "DEFAULT_DIGEST", "HASH_BASE", "HASH_RATIO"]

#: bytes any stream may have hashed, plus ``HASH_RATIO`` per byte of it read
HASH_BASE = 64 << 20
HASH_RATIO = 512
_CHUNK = 1 << 16


class _Hasher(Protocol):
    def update(self, data: bytes | memoryview, /) -> None: ...

    def hexdigest(self) -> str: ...


#: digest name (as the CLI's ``--digest`` and the JSON's ``content_digest_algorithm`` say it) -> constructor
DIGESTS: dict[str, Callable[[], _Hasher]] = {"xxh3-128": xxhash.xxh3_128, "sha256": hashlib.sha256}
DEFAULT_DIGEST = "xxh3-128"


class _Block:
    def __init__(self, length: int, hasher: _Hasher) -> None:
        self.length = length
        self.hasher = hasher
        self.position = 0
        self.unavailable: str | None = None


class BlockDigests:
    """Feed a stream's records; ``results()`` gives each block's digest or why there is none."""

    def __init__(self, page_size: Callable[[], int], position: Callable[[], int], algorithm: str = DEFAULT_DIGEST) -> None:
        """``page_size`` and ``position`` (bytes of stream read) ask the reader as records arrive."""
        self._page_size = page_size
        self._position = position
        self.algorithm = algorithm
        self._new = DIGESTS[algorithm]
        self._hashed = 0
        self._blocks: dict[str, _Block] = {}
        self._fills: dict[int, memoryview] = {}

    def tee(self, records: Iterable[StreamRecord]) -> Iterator[StreamRecord]:
        """Pass ``records`` through, feeding each one."""
        for record in records:
            self.feed(record)
            yield record

    def feed(self, record: StreamRecord) -> None:
        """Take one record; only the block list and pages matter."""
        if isinstance(record, RamPageRun):
            self._run(record)
        elif isinstance(record, RamPage):
            self._add(record.block, record.offset, len(record.data), record.data)
        elif isinstance(record, RamZero):
            self._add(record.block, record.offset, self._page_size(), record.fill)
        elif isinstance(record, RamBlockList):
            for block in record.blocks:
                self._blocks.setdefault(block.name, _Block(block.length, self._new()))

    def _charge(self, block: _Block, count: int) -> bool:
        """Whether ``count`` more bytes may be hashed now; if not, the block's digest is unavailable."""
        if self._hashed + count > HASH_BASE + HASH_RATIO * self._position():
            block.unavailable = (f"hashing it would take more than {HASH_BASE >> 20} MiB plus {HASH_RATIO} bytes"
                                 " per byte of stream (pages never sent hash as zeros)")
            return False
        self._hashed += count
        return True

    def _usable(self, name: str, offset: int, size: int) -> _Block | None:
        """The block if ``size`` bytes at ``offset`` may be hashed into it now (the gap before them included)."""
        block = self._blocks.get(name)
        if block is None:
            block = self._blocks[name] = _Block(0, self._new())
            block.unavailable = "the block list did not announce this block"
        if block.unavailable is not None:
            return None
        if offset < block.position:
            block.unavailable = f"page {offset:#x} came after the bytes up to {block.position:#x} (sent again or out of order)"
        elif offset + size > block.length:
            block.unavailable = f"page {offset:#x} lies past the block's length {block.length:#x}"
        elif self._charge(block, offset - block.position + size):
            self._fill(block, 0, offset - block.position)
            return block
        return None

    def _add(self, name: str, offset: int, size: int, data: bytes | memoryview | int) -> None:
        """Hash a page of ``size`` bytes: ``data``, or ``size`` times the byte ``data`` (a ZERO record)."""
        block = self._usable(name, offset, size)
        if block is None:
            return
        if isinstance(data, int):
            self._fill(block, data, size)
        else:
            block.hasher.update(data)
            block.position += size

    def _run(self, run: RamPageRun) -> None:
        """Hash a run's pages: consecutive by construction, so the checks are made once for the run."""
        size = run.count * run.page_size
        block = self._usable(run.block, run.offset, size)
        if block is None:
            return
        view, stride, page_size = memoryview(run.raw), run.header + run.page_size, run.page_size
        update = block.hasher.update
        if not run.header:  # mapped-ram pages lie side by side
            update(view[: run.count * page_size])
        else:
            for start in range(run.header, run.count * stride, stride):
                update(view[start : start + page_size])
        block.position += size

    def _fill(self, block: _Block, byte: int, count: int) -> None:
        """Hash ``count`` copies of ``byte``, a chunk at a time (never ``count`` bytes at once)."""
        chunk = self._fills.get(byte)
        if chunk is None:
            chunk = self._fills[byte] = memoryview(bytes((byte,)) * _CHUNK)
        block.position += count
        while count > 0:
            step = min(count, _CHUNK)
            block.hasher.update(chunk[:step])
            count -= step

    def results(self) -> dict[str, dict[str, Any]]:
        """Each block's ``content_digest`` (hex, or None with ``content_digest_unavailable``: why) and ``content_digest_algorithm``."""
        out: dict[str, dict[str, Any]] = {}
        for name, block in self._blocks.items():
            if block.unavailable is None and self._charge(block, block.length - block.position):
                self._fill(block, 0, block.length - block.position)
            entry: dict[str, Any] = {"content_digest": None, "content_digest_algorithm": self.algorithm}
            if block.unavailable is None:
                entry["content_digest"] = block.hasher.hexdigest()
            else:
                entry["content_digest_unavailable"] = block.unavailable
            out[name] = entry
        return out
