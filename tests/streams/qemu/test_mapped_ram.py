"""QEMU 10.0's mapped-ram files and the other 10.0 stream features, on the real files of compat_fixtures/formats.

The mapped-ram files are committed xz-compressed; ``restore`` writes them back
sparse (compat_fixtures/generate_formats.py), as QEMU left them.
"""

from __future__ import annotations

import functools
import io
import lzma
import os
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compat_fixtures.generate_formats import restore
from devices import DEFAULT_REGISTRY
from streams import records
from streams.convert import convert
from streams.qemu import StreamReader, check_stream, summarize
from streams.qemu.extract import extract_stream
from vmstate.errors import DecodeError, MalformedError, TruncatedError, UnsupportedError
from tests.support.paths import ROOT

FORMATS = ROOT / "compat_fixtures" / "formats"
MAPPED = FORMATS / "pc-10.0-mapped-ram.mig.xz"
PLAIN = FORMATS / "pc-10.0-plain.mig.xz"
#: pc.ram's entry in pc-10.0-mapped-ram: the entry at 0x63, its header at 0x72 (version, page size, bitmap, pages)
ENTRY, HEADER = 0x63, 0x72


@pytest.fixture(scope="module")
def sparse(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every fixture of compat_fixtures/formats, restored as a sparse file."""
    work = tmp_path_factory.mktemp("formats")
    return {p.name.removesuffix(".mig.xz"): restore(p, work / p.name.removesuffix(".xz")) for p in FORMATS.glob("*.mig.xz")}


def read(path: Path | io.BytesIO) -> list[records.StreamRecord]:
    """Every record of a file (page runs batched), its RAM region views copied out."""
    source = open(path, "rb") if isinstance(path, Path) else path
    with source:
        return list(StreamReader(source, descriptions=DEFAULT_REGISTRY, batch_pages=True))


def checked(path: Path) -> bool:
    with open(path, "rb") as source, open(path, "rb") as original:
        report = check_stream(source, original, descriptions=DEFAULT_REGISTRY)
    return report.identical and report.size == path.stat().st_size and report.raw_bytes == 0


def patched(sparse_file: Path, tmp_path: Path, at: int, data: bytes) -> Path:
    """A sparse copy of a fixture with ``data`` written at ``at``."""
    target = restore(FORMATS / f"{sparse_file.name}.xz", tmp_path / sparse_file.name)
    with open(target, "r+b") as file:
        file.seek(at)
        file.write(data)
    return target


def test_restored_files_are_sparse_and_equal_to_the_compressed_bytes(sparse: dict[str, Path]) -> None:
    path = sparse["pc-10.0-mapped-ram"]
    assert path.stat().st_blocks * 512 < path.stat().st_size // 10  # 24 MiB apparent, under 1 MiB on disk
    assert path.read_bytes() == lzma.decompress(MAPPED.read_bytes())


@pytest.mark.parametrize("name", ["pc-10.0-plain", "pc-10.0-mapped-ram", "pc-10.0-mapped-ram-multifd",
                                  "pc-10.0-virtio-mem-mapped-ram", "pc-10.0-postcopy-ram"])
def test_every_fixture_reencodes_identically(sparse: dict[str, Path], name: str) -> None:
    assert checked(sparse[name])


def test_the_compressed_fixture_reads_through_its_spool_too() -> None:
    with lzma.open(MAPPED) as source, lzma.open(MAPPED) as original:
        assert check_stream(source, original, descriptions=DEFAULT_REGISTRY).identical


def test_mapped_ram_blocks_have_headers_laid_out_as_qemu_does(sparse: dict[str, Path]) -> None:
    found = read(sparse["pc-10.0-mapped-ram"])
    blocks = next(r for r in found if isinstance(r, records.RamBlockList))
    assert blocks.mapped and [b.name for b in blocks.blocks][:3] == ["pc.ram", "/rom@etc/acpi/tables", "pc.bios"]
    entries = [r.block for r in found if isinstance(r, records.MappedRamBlock)]
    assert entries == list(blocks.blocks)
    first = blocks.blocks[0].mapped
    assert first == records.MappedRamHeader(1, 4096, HEADER + 28, 0x100000)
    for block in blocks.blocks:
        assert block.mapped is not None and block.mapped.pages_offset % 0x100000 == 0
    # pc.ram of a paused VM is all zero: its bitmap marks nothing and its 16 MiB of pages are one hole
    assert [r for r in found if isinstance(r, records.MappedRamBitmap) and r.block == "pc.ram"] == [
        records.MappedRamBitmap("pc.ram", 0, bytes(512))]
    assert records.MappedRamFill(16 << 20) in found
    runs = [r for r in found if isinstance(r, records.RamPageRun)]
    assert runs and all(r.header == 0 for r in runs) and sum(r.count for r in runs) == 111  # QEMU's "normal: 111 pages"


def test_holes_are_skipped_not_read(sparse: dict[str, Path]) -> None:
    """The 158 MB virtio-mem file (128 MiB block) is decoded reading a few MiB: /proc/self/io counts every read."""

    def read_bytes() -> int:
        return int(next(line for line in Path("/proc/self/io").read_text().splitlines() if line.startswith("rchar:")).split()[1])

    path = sparse["pc-10.0-virtio-mem-mapped-ram"]
    before = read_bytes()
    found = read(path)
    assert read_bytes() - before < 8 << 20 < path.stat().st_size // 16
    assert any(isinstance(r, records.MappedRamFill) and r.data is None and r.length >= 128 << 20 for r in found)


def test_the_section_saved_in_the_setup_phase_sits_between_rams_start_and_its_first_part(sparse: dict[str, Path]) -> None:
    found = read(sparse["pc-10.0-virtio-mem-mapped-ram"])
    headers = [r for r in found if isinstance(r, records.SectionHeader)]
    assert headers[0].idstr == "ram" and headers[0].kind == records.SectionType.START
    assert headers[1].idstr == "0000:00:02.0/virtio-mem-device-early" and headers[1].kind == records.SectionType.FULL
    assert headers[2].kind == records.SectionType.PART and headers[2].section_id == headers[0].section_id
    early = next(r for r in found if isinstance(r, records.DeviceState))
    assert early.record.fields["tmp"].fields["region_size"] == 128 << 20


def test_commands_by_name(sparse: dict[str, Path]) -> None:
    plain = [r for r in read(sparse["pc-10.0-plain"]) if isinstance(r, records.Command)]
    assert [c.name for c in plain] == ["SWITCHOVER_START"] and plain[0].data == b""
    postcopy = [r for r in read(sparse["pc-10.0-postcopy-ram"]) if isinstance(r, records.Command)]
    assert [c.name for c in postcopy] == ["OPEN_RETURN_PATH", "PING", "POSTCOPY_ADVISE", "SWITCHOVER_START"]
    assert postcopy[1].arguments() == {"value": 1}
    assert postcopy[2].arguments() == {"host_page_size": 4096, "target_page_size": 4096}


def test_summary_and_digests_agree_with_the_plain_stream(sparse: dict[str, Path]) -> None:
    from streams.qemu.block_digest import BlockDigests

    def digests(path: Path) -> dict[str, str | None]:
        with open(path, "rb") as source:
            reader = StreamReader(source, descriptions=DEFAULT_REGISTRY, batch_pages=True)
            digest = BlockDigests(page_size=lambda: reader.page_size, position=lambda: reader.offset)
            summary = summarize(digest.tee(reader), record_digests=False)
        assert all("mapped_ram" in b for b in summary["ram"]) == (path.name.find("mapped") >= 0)
        return {name: d.get("content_digest") for name, d in digest.results().items()}

    assert digests(sparse["pc-10.0-mapped-ram"]) == digests(sparse["pc-10.0-plain"])


def test_extract_gives_the_plain_streams_block_files(sparse: dict[str, Path], tmp_path: Path) -> None:
    for name in ("pc-10.0-plain", "pc-10.0-mapped-ram"):
        with open(sparse[name], "rb") as source:
            extract_stream(source, tmp_path / name, descriptions=DEFAULT_REGISTRY)
    plain, mapped = sorted((tmp_path / "pc-10.0-plain" / "ram").iterdir()), sorted((tmp_path / "pc-10.0-mapped-ram" / "ram").iterdir())
    assert [p.name for p in plain] == [p.name for p in mapped] and len(plain) == 7
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(plain, mapped))


@pytest.mark.parametrize("codec", ["msgpack", "cbor", "json"])
def test_a_snapshot_of_a_mapped_ram_file_converts_back_byte_for_byte_and_sparse(
    sparse: dict[str, Path], tmp_path: Path, codec: str
) -> None:
    source = sparse["pc-10.0-mapped-ram"]
    snapshot, back = tmp_path / f"m.{codec}", tmp_path / "back.mig"
    convert(source, snapshot, codec, descriptions=DEFAULT_REGISTRY)
    assert snapshot.stat().st_size < 2 << 20
    convert(snapshot, back, "qemu", descriptions=DEFAULT_REGISTRY)
    assert back.read_bytes() == source.read_bytes()
    assert back.stat().st_blocks * 512 < back.stat().st_size // 10


def _ram_prefix(path: Path) -> bytes:
    """The file up to the end of its last block's pages (configuration, RAM setup, every block's region)."""
    blocks = next(r for r in read(path) if isinstance(r, records.RamBlockList))
    last = blocks.blocks[-1]
    assert last.mapped is not None
    return path.read_bytes()[: last.mapped.pages_offset + last.length]


def test_a_plain_stream_laid_out_as_mapped_ram_is_qemus_layout(sparse: dict[str, Path], tmp_path: Path) -> None:
    snapshot, ours = tmp_path / "plain.msgpack", tmp_path / "ours.mig"
    convert(sparse["pc-10.0-plain"], snapshot, "msgpack", descriptions=DEFAULT_REGISTRY)
    convert(snapshot, ours, "qemu", descriptions=DEFAULT_REGISTRY, layout="mapped-ram")
    assert checked(ours)
    assert ours.stat().st_size == sparse["pc-10.0-mapped-ram"].stat().st_size
    assert _ram_prefix(ours) == _ram_prefix(sparse["pc-10.0-mapped-ram"])  # the clocks after it differ run to run


def test_a_mapped_ram_file_laid_out_plain_holds_the_same_pages(sparse: dict[str, Path], tmp_path: Path) -> None:
    snapshot, ours = tmp_path / "mapped.cbor", tmp_path / "ours.mig"
    convert(sparse["pc-10.0-mapped-ram"], snapshot, "cbor", descriptions=DEFAULT_REGISTRY)
    convert(snapshot, ours, "qemu", descriptions=DEFAULT_REGISTRY, layout="plain")
    assert checked(ours) and ours.stat().st_size == sparse["pc-10.0-plain"].stat().st_size
    found = read(ours)
    configuration = next(r for r in found if isinstance(r, records.Configuration))
    assert not configuration.record.subsections  # the capability is gone with the layout
    assert not any(isinstance(r, (records.MappedRamBlock, records.MappedRamFill)) for r in found)


# ------------------------------------------------------------------ hostile variants


def _error(path: Path) -> DecodeError:
    with pytest.raises(DecodeError) as caught:
        read(path)
    return caught.value


@pytest.mark.parametrize(("at", "data", "kind", "where", "text"), [
    (HEADER, struct.pack(">I", 2), UnsupportedError, HEADER, "header version 2 of RAM block 'pc.ram'"),
    (HEADER + 4, struct.pack(">Q", 0x2000), MalformedError, HEADER, "mapped-ram page size 0x2000"),
    (HEADER + 12, struct.pack(">Q", 0x10), MalformedError, HEADER + 12, "does not lie between its header's end 0x8e"),
    (HEADER + 12, struct.pack(">Q", 0xFFFF8), MalformedError, HEADER + 12, "its pages at 0x100000"),
    (HEADER + 20, struct.pack(">Q", 0x100200), MalformedError, HEADER + 20, "are not page-aligned"),
    (HEADER + 20, struct.pack(">Q", 1 << 62), TruncatedError, HEADER + 20, "past the file's end"),
    # the case, the other way round: a block as long as the announced total, pages past the file
    (0x5B, struct.pack(">Q", (1 << 41) | 4) + b"\x06pc.ram" + struct.pack(">Q", 1 << 40), MalformedError, HEADER + 12,
     "bitmap of RAM block 'pc.ram' at 0x8e..0x200008e does not lie between"),  # 32 MiB of bitmap, never read
    (0x6A, struct.pack(">Q", 1 << 40), MalformedError, ENTRY, "overruns the announced total"),
    # pc.ram's bitmap marks page 0, which is a hole: QEMU never leaves a page it marks unwritten
    (HEADER + 28, b"\x01", MalformedError, 0x100000, "a page the bitmap marks at 0x100000 lies in a hole"),
])
def test_bad_headers_are_typed_errors_naming_offset_and_block(
    sparse: dict[str, Path], tmp_path: Path, at: int, data: bytes, kind: type[DecodeError], where: int, text: str
) -> None:
    error = _error(patched(sparse["pc-10.0-mapped-ram"], tmp_path, at, data))
    assert type(error) is kind and error.offset == where and error.section == "ram", str(error)
    assert text in str(error) and "pc.ram" in str(error)


def test_bytes_the_loader_never_reads_are_kept_byte_for_byte(sparse: dict[str, Path], tmp_path: Path) -> None:
    path = patched(sparse["pc-10.0-mapped-ram"], tmp_path, 0x1000, b"junk in the padding")
    assert checked(path)
    assert records.MappedRamFill(4096, None) not in read(path)
    assert any(isinstance(r, records.MappedRamFill) and r.data is not None and b"junk" in r.data for r in read(path))


@functools.cache
def mapped_bytes() -> bytes:
    return lzma.decompress(MAPPED.read_bytes())


#: cuts inside the RAM setup: an entry, a header, a bitmap, pc.ram's pages, the next entry, a marked page, the end
_CUTS = [ENTRY + 1, HEADER + 10, 0x90, 0x100000, 0x1100010, 0x1200000 + 0x1800, 24371253 - 1]


@settings(max_examples=40, deadline=None)
@given(st.one_of(st.sampled_from(_CUTS), st.integers(0x5B, 24371253 - 1)))
def test_a_cut_mapped_ram_file_is_a_truncation_at_or_before_the_cut(cut: int) -> None:
    with pytest.raises(TruncatedError) as caught:
        read(io.BytesIO(mapped_bytes()[:cut]))
    assert caught.value.offset is not None and caught.value.offset <= cut


def test_a_switchover_start_with_a_payload_is_refused_where_it_starts(sparse: dict[str, Path], tmp_path: Path) -> None:
    data = sparse["pc-10.0-plain"].read_bytes()
    at = data.index(b"\x08\x00\x0b\x00\x00\x03")  # COMMAND, SWITCHOVER_START, length 0, then END
    bad = tmp_path / "bad.mig"
    bad.write_bytes(data[:at] + b"\x08\x00\x0b\x00\x01\x00" + data[at + 5 :])
    error = _error(bad)
    assert isinstance(error, MalformedError) and error.offset == at + 1 and "SWITCHOVER_START command with 1 bytes" in str(error)


def multifd_flushed(plain: bytes) -> bytes:
    """The plain stream with a MULTIFD_FLUSH record before the EOS of RAM's first PART (where QEMU 8.1+ puts one)."""
    at = plain.index(b"\x02\x00\x00\x00\x01", 0x20) + 5  # PART, section id 1
    eos = plain.index(b"\x00\x00\x00\x00\x00\x00\x00\x10\x7e\x00\x00\x00\x01\x08\x00\x0b", at)  # EOS, footer, SWITCHOVER_START
    return plain[:eos] + struct.pack(">Q", records.RamFlag.MULTIFD_FLUSH) + plain[eos:]


def test_a_multifd_flush_record_is_typed_and_written_back(sparse: dict[str, Path], tmp_path: Path) -> None:
    path = tmp_path / "flushed.mig"
    path.write_bytes(multifd_flushed(sparse["pc-10.0-plain"].read_bytes()))
    assert checked(path)
    assert records.RamFlush() in read(path)
    with open(path, "rb") as source:
        assert summarize(StreamReader(source, descriptions=DEFAULT_REGISTRY))["multifd_flushes"] == 1


def test_a_vmdesc_configuration_entry_that_disagrees_is_refused(sparse: dict[str, Path], tmp_path: Path) -> None:
    data = sparse["pc-10.0-mapped-ram"].read_bytes()
    at = data.index(b'{"configuration"')
    entry = data.index(b'"configuration/capabilities"', at)
    bad = tmp_path / "bad.mig"
    with open(bad, "wb") as file:
        file.write(data[:entry] + b'"configuration/capabilitiex"' + data[entry + 28 :])
    os.truncate(bad, len(data))
    error = _error(bad)
    assert isinstance(error, MalformedError) and error.section == "vmdesc"
    assert "lists the subsections ['configuration/capabilitiex']" in str(error)
