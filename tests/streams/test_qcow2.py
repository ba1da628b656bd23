"""qcow2 internal snapshots: the VM state real ``savevm`` wrote, read through the snapshot's L1/L2 tables.

The fixture (compat_fixtures/generate_containers.py) is a disk with snapshots
``first`` and ``second`` of one paused QEMU 7.2 VM, virtio-net's link set off
in between.  Hostile variants are that real image with one field changed.
"""

from __future__ import annotations

import io
import lzma
import re
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compat_fixtures.generate_containers import qemu_argv
from devices import DEFAULT_REGISTRY
from streams.files import open_stream, open_stream_pair
from streams.qcow2 import Qcow2Image, list_snapshots, split_snapshot_name
from streams.qemu import check_stream
from tests.support.cli import run_script
from tests.support.paths import ROOT
from tests.support.qemu_driver import load_and_resave
from vmstate.errors import MalformedError, TruncatedError, UnsupportedError, VMStateError

FIXTURE = ROOT / "compat_fixtures" / "containers" / "two-snapshots.qcow2.xz"
IMAGE = lzma.decompress(FIXTURE.read_bytes())


@pytest.fixture()
def disk(tmp_path: Path) -> Path:
    path = tmp_path / "disk.qcow2"
    path.write_bytes(IMAGE)
    return path


def _variant(tmp_path: Path, offset: int, value: bytes) -> Path:
    data = bytearray(IMAGE)
    data[offset:offset + len(value)] = value
    path = tmp_path / "bad.qcow2"
    path.write_bytes(bytes(data))
    return path


def test_the_snapshot_table_lists_both_snapshots(disk: Path) -> None:
    snapshots = list_snapshots(disk)
    assert [s.name for s in snapshots] == ["first", "second"]
    assert all(s.vm_state_size > 600_000 and s.disk_size == 32 << 20 for s in snapshots)
    result = run_script("vmstate", "describe", disk)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == f"{disk}: 2 internal snapshot(s)"
    assert f"({disk}@second)" in result.stdout


@pytest.mark.parametrize("tag", ["first", "second", "1"])
def test_a_snapshot_state_is_a_stream_that_reencodes_identically(disk: Path, tag: str) -> None:
    with open_stream_pair(f"{disk}@{tag}") as (source, original):
        report = check_stream(source, original, descriptions=DEFAULT_REGISTRY)
    assert report.identical and report.size == list_snapshots(disk)[0 if tag in ("first", "1") else 1].vm_state_size
    assert report.raw_bytes == 0 and not report.unnamed
    assert any(s.idstr.endswith("/virtio-net") for s in report.sections)


def test_the_state_starts_at_the_first_l1_entry_past_the_disk(disk: Path) -> None:
    with open(disk, "rb") as raw:
        image = Qcow2Image(raw, str(disk))
        snapshot = image.snapshot("first")
        # 64 KiB clusters, 8192 entries per L2 table: one L1 entry covers 512 MiB; the disk is 32 MiB
        assert image.vm_state_start(snapshot) == 512 << 20
    with open_stream(f"{disk}@first") as state:
        assert state.read(8) == b"QEVM\x00\x00\x00\x03"


def test_migration_diff_between_two_snapshots_of_one_disk(disk: Path) -> None:
    result = run_script("migration-diff", f"{disk}@first", f"{disk}@second")
    assert result.returncode == 1, result.stderr
    assert "0000:00:02.0/virtio-net: virtio.device.status: 1 -> 0" in result.stdout.splitlines()


@pytest.mark.qemu
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_an_extracted_snapshot_loads_in_qemu(disk: Path, tmp_path: Path) -> None:
    stream = tmp_path / "second.mig"
    result = run_script("vmstate", "convert", f"{disk}@second", stream)
    assert result.returncode == 0, result.stderr
    argv = [a for a in qemu_argv(disk) if a not in ("-monitor", "stdio")]
    assert load_and_resave(argv, stream, tmp_path) == "completed"


def test_a_file_named_with_an_at_sign_wins(tmp_path: Path, disk: Path) -> None:
    literal = tmp_path / "disk.qcow2@first"
    literal.write_bytes(b"not qcow2")
    assert split_snapshot_name(str(literal)) is None
    assert split_snapshot_name(f"{disk}@second") == (str(disk), "second")


def test_a_bare_disk_or_an_unknown_tag_names_the_snapshots(disk: Path) -> None:
    for name, problem in ((disk, "name one of its snapshots as"), (f"{disk}@third", "no snapshot 'third'")):
        result = run_script("vmstate", "check", name)
        assert result.returncode == 2 and problem in result.stderr and "first, second" in result.stderr
        assert "Traceback" not in result.stderr


def _snapshot_entry_offset() -> int:
    return struct.unpack_from(">Q", IMAGE, 64)[0]


@pytest.mark.parametrize(("where", "value", "error", "problem"), [
    (60, struct.pack(">I", 1 << 20), MalformedError, "snapshots (QEMU allows 65536)"),
    (64, struct.pack(">Q", 1 << 50), MalformedError, "lies outside the file"),
    (4, struct.pack(">I", 9), UnsupportedError, "qcow2 version 9"),
    (20, struct.pack(">I", 40), MalformedError, "cluster_bits 40"),
    (32, struct.pack(">I", 1), UnsupportedError, "encrypted"),
    (72, struct.pack(">Q", 1 << 4), UnsupportedError, "extended L2 entries"),
])
def test_hostile_headers_are_typed_errors(tmp_path: Path, where: int, value: bytes, error: type, problem: str) -> None:
    path = _variant(tmp_path, where, value)
    with pytest.raises(error, match=re.escape(problem)):
        open_stream(f"{path}@first").close()
    result = run_script("vmstate", "dump", f"{path}@first")
    assert result.returncode == 2 and problem in result.stderr and "Traceback" not in result.stderr


def test_a_snapshot_l1_table_outside_the_file(tmp_path: Path) -> None:
    path = _variant(tmp_path, _snapshot_entry_offset(), struct.pack(">Q", 1 << 45))
    with pytest.raises(MalformedError, match="L1 table at 0x2000000000"):
        with open_stream(f"{path}@first") as state:
            state.read(16)


def test_oversized_extra_data_and_a_truncated_image(tmp_path: Path) -> None:
    path = _variant(tmp_path, _snapshot_entry_offset() + 36, struct.pack(">I", 1 << 20))
    with pytest.raises(MalformedError, match="extra data"):
        open_stream(f"{path}@first")
    short = tmp_path / "short.qcow2"
    short.write_bytes(IMAGE[:40])
    with pytest.raises(MalformedError, match="header at 0x0"):
        open_stream(f"{short}@first")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flips=st.lists(st.tuples(st.integers(0, 0x1FFFF), st.integers(1, 255)), min_size=1, max_size=6))
def test_mutated_metadata_gives_a_typed_error_or_a_stream(flips: list[tuple[int, int]]) -> None:
    """Bytes flipped in the header, the snapshot table's region and the first tables: never another exception."""
    data = bytearray(IMAGE)
    table = _snapshot_entry_offset()
    for where, mask in flips:
        at = where if where < 0x10000 else table + (where - 0x10000) % 0x100
        data[at % len(data)] ^= mask
    raw = io.BytesIO(bytes(data))
    try:
        image = Qcow2Image(raw, "mutant")
        snapshot = image.snapshot(image.snapshots[0].name) if image.snapshots else None
        if snapshot is not None:
            for at in range(0, min(snapshot.vm_state_size, 1 << 18), image.cluster_size):
                image.read_guest(snapshot, image.vm_state_start(snapshot) + at, 64)
    except (VMStateError, TruncatedError):
        pass
