"""``vmstate convert``, run as a real subprocess."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from devices import DEFAULT_REGISTRY
from streams.snapshots import MAGIC, load_snapshot
from tests.support.cli import run_script
from tests.support.paths import CORPUS
from tests.support.streams import stream_bytes

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
    assert load_snapshot(target, descriptions=DEFAULT_REGISTRY).codec == "cbor"
    assert run("convert", target, tmp_path / "again.mig", "--to", "json").returncode == 0
    assert load_snapshot(tmp_path / "again.mig", descriptions=DEFAULT_REGISTRY).codec == "json"  # --to wins over .mig


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


# ------------------------------------------------ what TARGET may be (issue 12, 3.13 and 3.15)

RNG = CORPUS / "pc-7.2-virtio-rng-legacy.mig"


def _fifo(path: Path) -> Path:
    import os

    os.mkfifo(path)
    return path


@pytest.mark.parametrize("kind", ["fifo", "directory", "/dev/null", "link to a fifo", "dangling link"])
def test_a_target_that_is_not_a_regular_file_is_refused_and_left_alone(tmp_path: Path, kind: str) -> None:
    import os
    import stat

    if kind == "fifo":
        target = _fifo(tmp_path / "out.msgpack")
    elif kind == "directory":
        target = tmp_path / "out.msgpack"
        target.mkdir()
    elif kind == "/dev/null":
        target = Path("/dev/null")
    else:
        target = tmp_path / "out.msgpack"
        target.symlink_to(_fifo(tmp_path / "fifo") if kind == "link to a fifo" else tmp_path / "nowhere")
    before = os.lstat(target)
    result = run("convert", RNG, target, "--to", "msgpack")
    assert result.returncode == 2 and result.stdout == "" and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"vmstate: error: {target}: ") and "refusing" in result.stderr
    after = os.lstat(target)
    assert (stat.S_IFMT(after.st_mode), after.st_ino, after.st_rdev) == (stat.S_IFMT(before.st_mode), before.st_ino, before.st_rdev)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_a_symlink_to_a_regular_file_is_written_through_and_kept(tmp_path: Path) -> None:
    real, link = tmp_path / "real.msgpack", tmp_path / "link.msgpack"
    real.write_bytes(b"old")
    link.symlink_to(real)
    result = run("convert", RNG, link)
    assert result.returncode == 0, result.stderr
    assert link.is_symlink() and link.resolve() == real
    assert load_snapshot(real, descriptions=DEFAULT_REGISTRY).codec == "msgpack"


def _limited(args: list[str], limit: int, **env: str) -> subprocess.CompletedProcess[str]:
    """Run with files limited to ``limit`` bytes (SIGXFSZ ignored, so a write fails with EFBIG, as on a full disk)."""
    import os
    import resource
    import shutil
    import signal

    def limit_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    exe = shutil.which(args[0])
    assert exe is not None
    return subprocess.run([exe, *args[1:]], capture_output=True, text=True, timeout=120, check=False,
                          preexec_fn=limit_files, env={**os.environ, **env})


def test_a_write_error_names_the_target_and_keeps_its_old_content(tmp_path: Path) -> None:
    target = tmp_path / "out.msgpack"
    target.write_bytes(b"precious")
    result = _limited(["vmstate", "convert", str(RNG), str(target)], 100_000)
    assert result.returncode == 2 and result.stderr == f"vmstate: error: {target}: File too large\n"
    assert target.read_bytes() == b"precious"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_a_write_error_in_migration_diff_names_the_temporary_directory(tmp_path: Path) -> None:
    # a booted guest: 58 MB of pages, so digest tables (16 bytes a page) well over the 100 KB allowed
    booted = tmp_path / "booted.mig"
    booted.write_bytes(stream_bytes(CORPUS / "pc-7.2-booted-virtio-legacy.mig.xz"))
    result = _limited(["migration-diff", str(booted), str(booted)], 100_000, TMPDIR=str(tmp_path))
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"migration-diff: error: {tmp_path}: File too large (page digest tables")
    assert "TMPDIR" in result.stderr
