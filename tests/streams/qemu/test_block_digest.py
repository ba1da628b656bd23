"""The per-block RAM digest of ``vmstate dump``: SHA-256 of the block's bytes, as ``extract`` writes them."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pytest

from streams.qemu import (
    Eof,
    FileHeader,
    RamBlock,
    RamBlockList,
    RamEos,
    RamFlag,
    RamPage,
    SectionHeader,
    SectionType,
    StreamWriter,
)
from streams.qemu.block_digest import HASH_BASE, HASH_RATIO, BlockDigests
from streams.records import RamZero, StreamRecord
from tests.support.cli import run_script
from tests.support.paths import CORPUS

STREAMS = [
    CORPUS / "pc-7.2-booted-virtio-legacy.mig.xz",
    CORPUS / "virt-7.2-virtio-mmio-all.mig",
    CORPUS / "pc-2.2-virtio-all.mig",
]


@pytest.mark.parametrize("stream", STREAMS, ids=[p.name for p in STREAMS])
def test_dump_digest_is_sha256sum_of_the_extracted_block(stream: Path, tmp_path: Path) -> None:
    dump = run_script("vmstate", "dump", "--json", stream)
    assert dump.returncode == 0, dump.stderr
    blocks = json.loads(dump.stdout)["ram"]
    extracted = run_script("vmstate", "extract", stream, tmp_path / "out")
    assert extracted.returncode == 0, extracted.stderr
    files = {line.split("  (", 1)[1][:-1]: Path(line.split("  (", 1)[0]) for line in extracted.stdout.splitlines() if "  (" in line}
    assert blocks and set(files) == {b["name"] for b in blocks}
    for block in blocks:
        assert block["content_sha256"] == hashlib.sha256(files[block["name"]].read_bytes()).hexdigest(), block["name"]
    text = run_script("vmstate", "dump", stream).stdout.splitlines()
    assert f"  sha256 {blocks[0]['content_sha256']}" in text


def _stream(records: list[StreamRecord], path: Path) -> Path:
    sink = io.BytesIO()
    StreamWriter(sink).write_all(records)
    path.write_bytes(sink.getvalue())
    return path


def _ram(length: int, pages: list[tuple[int, int]]) -> list[StreamRecord]:
    """A RAM-only stream: one block ``pc.ram`` of ``length`` bytes, ``(offset, byte)`` pages in this order."""
    records: list[StreamRecord] = [FileHeader(), SectionHeader(SectionType.START, 1, "ram", 0, 4),
                                   RamBlockList(length, (RamBlock("pc.ram", length),))]
    for n, (offset, fill) in enumerate(pages):
        flags = RamFlag.PAGE | (RamFlag.CONTINUE if n else 0)
        records.append(RamPage("pc.ram", offset, flags, bytes((fill,)) * 4096))
    return [*records, RamEos(), Eof()]


def test_pages_in_order_with_gaps_hash_as_the_block(tmp_path: Path) -> None:
    stream = _stream(_ram(8 * 4096, [(4096, 1), (3 * 4096, 2)]), tmp_path / "gaps.mig")
    expected = hashlib.sha256(bytes(4096) + b"\1" * 4096 + bytes(4096) + b"\2" * 4096 + bytes(4 * 4096)).hexdigest()
    (block,) = json.loads(run_script("vmstate", "dump", "--json", stream).stdout)["ram"]
    assert block["content_sha256"] == expected


def test_a_page_sent_again_makes_the_digest_unavailable_and_says_why(tmp_path: Path) -> None:
    stream = _stream(_ram(4 * 4096, [(4096, 1), (0, 2)]), tmp_path / "again.mig")
    (block,) = json.loads(run_script("vmstate", "dump", "--json", stream).stdout)["ram"]
    assert block["content_sha256"] is None
    assert "sent again or out of order" in block["content_sha256_unavailable"]
    assert "  sha256 unavailable: page 0x0 came after the bytes up to 0x2000 (sent again or out of order)" in (
        run_script("vmstate", "dump", stream).stdout.splitlines())


def test_a_hostile_block_length_is_not_hashed() -> None:
    """A block of 1 PiB announced in a few bytes of stream costs no hashing: the budget follows the stream."""
    offset = 40
    digests = BlockDigests(lambda: 4096, lambda: offset)
    digests.feed(RamBlockList(1 << 50, (RamBlock("huge", 1 << 50),)))
    digests.feed(RamZero("huge", 0, RamFlag.ZERO, 0))
    result = digests.results()["huge"]
    assert result["content_sha256"] is None
    assert result["content_sha256_unavailable"] == (
        f"hashing it would take more than {HASH_BASE >> 20} MiB plus {HASH_RATIO} bytes per byte of stream"
        " (pages never sent hash as zeros)")


def test_a_hostile_page_size_is_not_hashed() -> None:
    """A 1 GiB page size (from a vmdesc) makes each 9-byte zero record a gigabyte to hash: refused."""
    offset = 100
    digests = BlockDigests(lambda: 1 << 30, lambda: offset)
    digests.feed(RamBlockList(4 << 30, (RamBlock("pc.ram", 4 << 30),)))
    for n in range(4):
        offset += 9
        digests.feed(RamZero("pc.ram", n << 30, RamFlag.ZERO | RamFlag.CONTINUE, 0))
    assert digests.results()["pc.ram"]["content_sha256"] is None
