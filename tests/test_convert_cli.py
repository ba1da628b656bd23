"""``vmstate convert``, run as a real subprocess."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import CORPUS, run_script, stream_bytes

from streams.selfdesc import MAGIC, load_snapshot

NET = CORPUS / "pc-7.2-virtio-net-legacy.mig"
MMIO_XZ = CORPUS / "virt-7.2-bare-le-mmio.mig.xz"


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return run_script("vmstate", *args)


@pytest.mark.parametrize("suffix", [".msgpack", ".cbor", ".json"])
def test_the_suffix_picks_the_codec_and_the_way_back_is_exact(tmp_path: Path, suffix: str) -> None:
    snapshot, back = tmp_path / f"vm{suffix}", tmp_path / "back.mig"
    result = run("convert", MMIO_XZ, snapshot)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    data = snapshot.read_bytes()
    assert data.startswith(MAGIC) and chr(data[10]) == {".msgpack": "M", ".cbor": "C", ".json": "J"}[suffix]
    assert run("convert", snapshot, back).returncode == 0
    assert back.read_bytes() == stream_bytes(MMIO_XZ)


def test_to_overrides_the_suffix(tmp_path: Path) -> None:
    target = tmp_path / "vm.snapshot"
    assert run("convert", NET, target, "--to", "cbor").returncode == 0
    assert load_snapshot(target).codec == "cbor"
    assert run("convert", target, tmp_path / "again.mig", "--to", "json").returncode == 0
    assert load_snapshot(tmp_path / "again.mig").codec == "json"  # --to wins over .mig


def test_an_unknown_suffix_without_to_is_exit_2(tmp_path: Path) -> None:
    result = run("convert", NET, tmp_path / "vm.bin")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "--to" in result.stderr
    assert not (tmp_path / "vm.bin").exists()


def test_a_corrupted_snapshot_is_one_line_exit_2_and_the_target_survives(tmp_path: Path) -> None:
    snapshot, target = tmp_path / "vm.msgpack", tmp_path / "out.mig"
    assert run("convert", NET, snapshot).returncode == 0
    data = bytearray(snapshot.read_bytes())
    data[len(data) // 2] ^= 0x40
    snapshot.write_bytes(bytes(data))
    target.write_bytes(b"precious")
    result = run("convert", snapshot, target)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert result.stderr.startswith("vmstate: error: at 0x") and "SHA-256" in result.stderr
    assert target.read_bytes() == b"precious"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_a_missing_input_is_exit_2(tmp_path: Path) -> None:
    result = run("convert", tmp_path / "nope.mig", tmp_path / "x.json")
    assert result.returncode == 2 and "nope.mig" in result.stderr


def test_help() -> None:
    result = run("convert", "--help")
    assert result.returncode == 0 and result.stdout.startswith("Usage: vmstate convert")
    assert "msgpack" in result.stdout and "--to" in result.stdout
