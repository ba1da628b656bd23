"""Small synthetic QEMU streams for tests that write a lot (crash and full-disk tests)."""

from __future__ import annotations

from collections.abc import Iterator

from streams.qemu import Eof, FileHeader, RamBlock, RamBlockList, RamEos, RamFlag, RamPage, SectionHeader, SectionType
from streams.records import StreamRecord

__all__ = ["ram_records"]


def ram_records(generation: int, pages: int) -> Iterator[StreamRecord]:
    """A minimal QEMU stream: one RAM block whose every page holds ``generation`` (as 8-byte words)."""
    yield FileHeader()
    yield SectionHeader(SectionType.START, 1, "ram", 0, 4)
    yield RamBlockList(pages * 4096, (RamBlock("pc.ram", pages * 4096),))
    for n in range(pages):
        flags = RamFlag.PAGE | (RamFlag.CONTINUE if n else 0)
        yield RamPage("pc.ram", n * 4096, flags, generation.to_bytes(8, "big") * 512)
    yield RamEos()
    yield Eof()
