"""vmstate extract: state.json plus one sparse file per RAM block, written safely."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path

import attrs
import pytest
from conftest import CORPUS, stream_bytes

from devices import DEFAULT_REGISTRY
from streams.qemu import RamBlockList, RamPage, RamZero, StreamReader, StreamWriter, summarize
from streams.qemu.extract import block_file_name, extract_stream
from vmstate.errors import UnsupportedError


@pytest.mark.parametrize("name", ["pc-7.2-virtio-net-legacy.mig", "pseries-7.2-virtio-all-legacy.mig",
                                  "pc-7.2-booted-virtio-legacy.mig.xz"])
def test_every_page_lands_at_its_offset_and_the_state_matches_dump(tmp_path: Path, name: str) -> None:
    data = stream_bytes(CORPUS / name)
    target = tmp_path / "out"
    summary = extract_stream(io.BytesIO(data), target, descriptions=DEFAULT_REGISTRY)
    state = json.loads((target / "state.json").read_text())
    assert state == summary
    del state["ram_files"]
    assert state == summarize(StreamReader(io.BytesIO(data), descriptions=DEFAULT_REGISTRY))
    files = {name: (target / path).read_bytes() for name, path in summary["ram_files"].items()}
    checked = 0
    for record in StreamReader(io.BytesIO(data)):
        if isinstance(record, RamBlockList):
            assert {b.name: b.length for b in record.blocks} == {n: len(files[n]) for n in files}
        elif isinstance(record, RamPage):
            assert files[record.block][record.offset : record.offset + len(record.data)] == record.data
            checked += 1
        elif isinstance(record, RamZero):
            page = files[record.block][record.offset : record.offset + 4096]
            assert page == bytes((record.fill,)) * len(page)
    assert checked


def test_block_names_never_escape_the_ram_directory(tmp_path: Path) -> None:
    assert block_file_name("/rom@etc/acpi/tables") == "%2From@etc%2Facpi%2Ftables"
    for hostile in ("..", ".", "../../etc/passwd", "a/../../b", ""):
        assert "/" not in block_file_name(hostile) and block_file_name(hostile) not in (".", "..", "")
    data = stream_bytes(CORPUS / "pc-7.2-virtio-rng-legacy.mig")
    evil = "../../evil"

    def rename(record: object) -> object:
        if isinstance(record, RamBlockList):
            return attrs.evolve(record, blocks=tuple(attrs.evolve(b, name=evil) if b.name == "pc.bios" else b
                                                     for b in record.blocks))
        if isinstance(record, (RamPage, RamZero)) and record.block == "pc.bios":
            return attrs.evolve(record, block=evil)
        return record

    out = io.BytesIO()
    StreamWriter(out).write_all(rename(r) for r in StreamReader(io.BytesIO(data)))
    (tmp_path / "x").mkdir()
    summary = extract_stream(io.BytesIO(out.getvalue()), tmp_path / "x" / "out")
    assert summary["ram_files"][evil] == "ram/..%2F..%2Fevil"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x"]
    assert sorted(p.name for p in (tmp_path / "x").iterdir()) == ["out"]


def test_an_existing_target_is_never_written_into(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    (target / "keep").write_text("mine")
    with pytest.raises(UnsupportedError, match="exists"):
        extract_stream(io.BytesIO(stream_bytes(CORPUS / "pc-7.2-virtio-rng-legacy.mig")), target)
    assert [p.name for p in target.iterdir()] == ["keep"]


def test_a_broken_stream_leaves_no_directory_behind(tmp_path: Path) -> None:
    data = stream_bytes(CORPUS / "pc-7.2-virtio-rng-legacy.mig")
    exe = shutil.which("vmstate")
    assert exe is not None
    (tmp_path / "cut.mig").write_bytes(data[: len(data) // 2])
    result = subprocess.run([exe, "extract", str(tmp_path / "cut.mig"), str(tmp_path / "out")],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "0x" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.mig"]
    ok = subprocess.run([exe, "extract", str(CORPUS / "pc-7.2-virtio-rng-legacy.mig"), str(tmp_path / "out")],
                        capture_output=True, text=True, timeout=120, check=False)
    assert ok.returncode == 0 and (tmp_path / "out" / "ram" / "pc.ram").stat().st_size == 16 << 20
    assert ok.stdout.splitlines()[-1].endswith("state.json")


def test_a_block_longer_than_a_file_can_be_is_a_typed_error(tmp_path: Path) -> None:
    from streams.qemu.extract import MAX_BLOCK

    data = stream_bytes(CORPUS / "pc-7.2-virtio-rng-legacy.mig")

    def grow(record: object) -> object:
        if isinstance(record, RamBlockList):
            blocks = tuple(attrs.evolve(b, length=MAX_BLOCK * 2) if b.name == "pc.ram" else b for b in record.blocks)
            return attrs.evolve(record, blocks=blocks, total=sum(b.length for b in blocks))
        return record

    out = io.BytesIO()
    StreamWriter(out).write_all(grow(r) for r in StreamReader(io.BytesIO(data)))
    from vmstate.errors import LimitExceededError

    with pytest.raises(LimitExceededError, match="pc.ram") as caught:
        extract_stream(io.BytesIO(out.getvalue()), tmp_path / "out")
    assert caught.value.section == "ram" and caught.value.offset is not None and caught.value.offset > 0
    assert list(tmp_path.iterdir()) == []
