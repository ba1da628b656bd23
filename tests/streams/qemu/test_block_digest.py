"""The per-block RAM digest of ``vmstate dump``: XXH3-128 (or, on request, SHA-256) of the block's bytes, as ``extract`` writes them."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
from pathlib import Path

import pytest
import xxhash

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
from streams.qemu.block_digest import DIGESTS, HASH_BASE, HASH_RATIO, BlockDigests
from streams.records import RamZero, StreamRecord
from tests.support.cli import run_script
from tests.support.paths import CORPUS

STREAMS = [
    CORPUS / "pc-7.2-booted-virtio-legacy.mig.xz",
    CORPUS / "virt-7.2-virtio-mmio-all.mig",
    CORPUS / "pc-2.2-virtio-all.mig",
]


def _extracted(stream: Path, target: Path) -> dict[str, Path]:
    extracted = run_script("vmstate", "extract", stream, target)
    assert extracted.returncode == 0, extracted.stderr
    return {line.split("  (", 1)[1][:-1]: Path(line.split("  (", 1)[0]) for line in extracted.stdout.splitlines() if "  (" in line}


@pytest.mark.parametrize("stream", STREAMS, ids=[p.name for p in STREAMS])
def test_dump_digest_sha256_is_what_sha256sum_prints_for_the_extracted_block(stream: Path, tmp_path: Path) -> None:
    dump = run_script("vmstate", "dump", "--json", "--digest", "sha256", stream)
    assert dump.returncode == 0, dump.stderr
    blocks = json.loads(dump.stdout)["ram"]
    files = _extracted(stream, tmp_path / "out")
    assert blocks and set(files) == {b["name"] for b in blocks}
    printed = subprocess.run(["sha256sum", *files.values()], capture_output=True, text=True, check=True).stdout
    sums = {Path(line.split("  ", 1)[1]): line.split("  ", 1)[0] for line in printed.splitlines()}
    for block in blocks:
        assert block["content_digest_algorithm"] == "sha256"
        assert block["content_digest"] == sums[files[block["name"]]], block["name"]
    text = run_script("vmstate", "dump", "--full", "--digest", "sha256", stream).stdout.splitlines()
    assert f"  sha256 {blocks[0]['content_digest']}" in text


@pytest.mark.parametrize("stream", STREAMS, ids=[p.name for p in STREAMS])
def test_the_default_digest_is_xxh3_128_of_the_extracted_block(stream: Path, tmp_path: Path) -> None:
    dump = run_script("vmstate", "dump", "--json", stream)
    assert dump.returncode == 0, dump.stderr
    blocks = json.loads(dump.stdout)["ram"]
    files = _extracted(stream, tmp_path / "out")
    for block in blocks:
        assert block["content_digest_algorithm"] == "xxh3-128"
        assert block["content_digest"] == xxhash.xxh3_128(files[block["name"]].read_bytes()).hexdigest(), block["name"]
        assert "sha256" not in block  # the page-record digest of the goldens costs a SHA-256 pass: not in dump
    text = run_script("vmstate", "dump", "--full", stream).stdout.splitlines()
    assert f"  xxh3-128 {blocks[0]['content_digest']}" in text


def test_the_cli_offers_every_digest_and_no_other() -> None:
    help_text = run_script("vmstate", "dump", "--help").stdout
    assert "[xxh3-128|sha256]" in help_text and set(DIGESTS) == {"xxh3-128", "sha256"}
    refused = run_script("vmstate", "dump", "--digest", "md5", STREAMS[1])
    assert refused.returncode == 2 and "md5" in refused.stderr


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


@pytest.mark.parametrize("digest", ["xxh3-128", "sha256"])
def test_pages_in_order_with_gaps_hash_as_the_block(tmp_path: Path, digest: str) -> None:
    stream = _stream(_ram(8 * 4096, [(4096, 1), (3 * 4096, 2)]), tmp_path / "gaps.mig")
    contents = bytes(4096) + b"\1" * 4096 + bytes(4096) + b"\2" * 4096 + bytes(4 * 4096)
    expected = (hashlib.sha256 if digest == "sha256" else xxhash.xxh3_128)(contents).hexdigest()
    (block,) = json.loads(run_script("vmstate", "dump", "--json", "--digest", digest, stream).stdout)["ram"]
    assert block["content_digest"] == expected


def test_a_page_sent_again_makes_the_digest_unavailable_and_says_why(tmp_path: Path) -> None:
    stream = _stream(_ram(4 * 4096, [(4096, 1), (0, 2)]), tmp_path / "again.mig")
    (block,) = json.loads(run_script("vmstate", "dump", "--json", stream).stdout)["ram"]
    assert block["content_digest"] is None
    assert "sent again or out of order" in block["content_digest_unavailable"]
    assert "  xxh3-128 unavailable: page 0x0 came after the bytes up to 0x2000 (sent again or out of order)" in (
        run_script("vmstate", "dump", "--full", stream).stdout.splitlines())


def test_a_hostile_block_length_is_not_hashed() -> None:
    """A block of 1 PiB announced in a few bytes of stream costs no hashing: the budget follows the stream."""
    offset = 40
    digests = BlockDigests(lambda: 4096, lambda: offset)
    digests.feed(RamBlockList(1 << 50, (RamBlock("huge", 1 << 50),)))
    digests.feed(RamZero("huge", 0, RamFlag.ZERO, 0))
    result = digests.results()["huge"]
    assert result["content_digest"] is None
    assert result["content_digest_unavailable"] == (
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
    assert digests.results()["pc.ram"]["content_digest"] is None
