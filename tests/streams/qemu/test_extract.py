"""vmstate extract: state.json plus one sparse file per RAM block, written safely."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path

import attrs
import pytest

from devices import DEFAULT_REGISTRY
from streams.qemu import RamBlockList, RamPage, RamZero, StreamReader, StreamWriter, summarize
from streams.qemu.extract import block_file_name, extract_stream
from tests.support.paths import CORPUS
from tests.support.streams import stream_bytes
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
    assert state == summarize(StreamReader(io.BytesIO(data), descriptions=DEFAULT_REGISTRY), record_digests=False)
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


# ------------------------------------------------ long names, symlinks, killed runs (issue 12, 3.13 and 3.15)


def _renamed(names: dict[str, str]) -> bytes:
    """The rng stream with some RAM blocks renamed (``old -> new``)."""
    data = stream_bytes(CORPUS / "pc-7.2-virtio-rng-legacy.mig")

    def rename(record: object) -> object:
        if isinstance(record, RamBlockList):
            return attrs.evolve(record, blocks=tuple(attrs.evolve(b, name=names.get(b.name, b.name)) for b in record.blocks))
        if isinstance(record, (RamPage, RamZero)) and record.block in names:
            return attrs.evolve(record, block=names[record.block])
        return record

    out = io.BytesIO()
    StreamWriter(out).write_all(rename(r) for r in StreamReader(io.BytesIO(data)))
    return out.getvalue()


def test_long_block_names_fit_name_max_and_stay_unique(tmp_path: Path) -> None:
    from streams.qemu.extract import NAME_MAX

    # 249 characters, 120 of them slashes: 489 bytes once escaped; the two differ only at the end
    first, second = "/objects/" + "a/" * 120, "/objects/" + "a/" * 119 + "b/"
    tilde = "a~b"
    summary = extract_stream(io.BytesIO(_renamed({"pc.bios": first, "pc.rom": second, "/rom@etc/acpi/rsdp": tilde})),
                             tmp_path / "out")
    files = summary["ram_files"]
    assert len(set(files.values())) == len(files)
    for name in (first, second):
        file_name = files[name].removeprefix("ram/")
        assert len(file_name) <= NAME_MAX and "~" in file_name and "/" not in file_name
        assert (tmp_path / "out" / files[name]).exists()
    assert files[tilde] == "ram/a%7Eb"  # a ~ of the name itself is escaped: only a cut name has one
    for name in ("x" * 255, "\u00e9" * 255, "%" * 100):
        assert len(block_file_name(name)) <= NAME_MAX


def test_a_symlink_as_the_target_is_never_followed(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    for link, points_to in ((tmp_path / "dangling", tmp_path / "nowhere"), (tmp_path / "to-a-dir", elsewhere)):
        elsewhere.mkdir(exist_ok=True)
        link.symlink_to(points_to)
        with pytest.raises(UnsupportedError, match="exists"):
            extract_stream(io.BytesIO(stream_bytes(CORPUS / "pc-7.2-virtio-rng-legacy.mig")), link)
        assert link.is_symlink() and list(elsewhere.iterdir()) == []
    assert not (tmp_path / "nowhere").exists()


def test_a_killed_extraction_leaves_a_visible_directory_that_the_next_run_removes(tmp_path: Path) -> None:
    import fcntl
    import signal
    import time

    booted = tmp_path / "booted.mig"
    booted.write_bytes(stream_bytes(CORPUS / "pc-7.2-booted-virtio-legacy.mig.xz"))
    exe = shutil.which("vmstate")
    assert exe is not None
    work = tmp_path / "work"
    work.mkdir()
    process = subprocess.Popen([exe, "extract", str(booted), str(work / "out")])
    try:
        # wait (without a clock) until the RAM file exists, then kill: whatever the machine's speed
        while process.poll() is None and not list(work.glob("out.incomplete-*/ram/pc.ram")):
            time.sleep(0.005)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    left = sorted(p.name for p in work.iterdir())
    assert len(left) == 1 and left[0].startswith("out.incomplete-"), left  # not hidden
    # a live extraction to the same DIR (it holds its lock) is never touched
    alive = work / "out.incomplete-alive123"
    (alive / "ram").mkdir(parents=True)
    with open(alive / ".lock", "wb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        result = subprocess.run([exe, "extract", str(CORPUS / "pc-7.2-virtio-rng-legacy.mig"), str(work / "out")],
                                capture_output=True, text=True, timeout=120, check=False)
        assert result.returncode == 0, result.stderr
        assert sorted(p.name for p in work.iterdir()) == ["out", "out.incomplete-alive123"]
    assert not (work / "out" / ".lock").exists()
