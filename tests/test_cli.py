"""End-to-end tests of the installed ``vmstate`` script, run as a real subprocess."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from vmstate import __version__

from conftest import CORPUS

NET = CORPUS / "pc-7.2-virtio-net-legacy.mig"
OLD = CORPUS / "pc-2.2-virtio-all.mig"


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("vmstate")
    if exe is None:
        pytest.fail("the `vmstate` script is not on PATH; install the project (pip install -e .)")
    return subprocess.run([exe, *map(str, args)], capture_output=True, text=True, timeout=120)


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"vmstate, version {__version__}"


@pytest.mark.parametrize("args", [["--help"], ["-h"], ["dump", "--help"], ["check", "--help"]], ids=" ".join)
def test_help(args: list[str]) -> None:
    result = run(*args)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Usage: vmstate")


def test_dump_text() -> None:
    result = run("dump", NET)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0] == "QEMU stream, file version 3, machine pc-i440fx-7.2"
    assert any(line.startswith("[0] timer instance 0 v2") for line in lines)
    assert any(line.startswith("[") and "/virtio-net instance 0" in line for line in lines)
    assert "  cpu_ticks_offset: 0" in lines
    assert any(line.startswith("ram pc.ram: 0x1000000 bytes") for line in lines)


def test_dump_json() -> None:
    result = run("dump", "--json", NET)
    assert result.returncode == 0, result.stderr
    summary: dict[str, Any] = json.loads(result.stdout)
    assert summary["machine"] == "pc-i440fx-7.2"
    sections = summary["sections"]
    assert isinstance(sections, list) and sections
    for section in sections:
        assert {"idstr", "version", "source"} <= section.keys()
    timer = next(s for s in sections if s["idstr"] == "timer")
    assert "cpu_ticks_offset" in timer["fields"]
    assert any(s["idstr"].endswith("/virtio-net") for s in sections)
    ram = summary["ram"]
    assert ram and {b["name"] for b in ram} >= {"pc.ram", "pc.bios"}
    for block in ram:
        assert isinstance(block["pages"], int) and isinstance(block["zero_pages"], int)
        assert (block["pages"] + block["zero_pages"]) * 4096 == block["length"]


def test_check_text() -> None:
    result = run("check", OLD, NET)
    assert result.returncode == 0, result.stderr
    verdicts = [line for line in result.stdout.splitlines() if not line.startswith(" ")]
    assert len(verdicts) == 2
    for path, line in zip((OLD, NET), verdicts):
        assert line.startswith(f"{path}: {path.stat().st_size} bytes, re-encoded identical;")


def test_check_json() -> None:
    result = run("check", "--json", OLD, NET)
    assert result.returncode == 0, result.stderr
    reports: list[dict[str, Any]] = json.loads(result.stdout)
    assert [r["file"] for r in reports] == [str(OLD), str(NET)]
    for report in reports:
        assert report["identical"] is True
        assert report["first_difference"] is None
        assert isinstance(report["raw_bytes"], int)
    old, net = reports
    assert old["raw_bytes"] > 0
    assert net["raw_bytes"] == 0


def _missing(tmp_path: Path) -> Path:
    return tmp_path / "no-such.mig"


def _not_a_stream(tmp_path: Path) -> Path:
    path = tmp_path / "picture.gif"
    path.write_bytes(b"GIF89a" + b"\0" * 94)
    return path


def _truncated(tmp_path: Path) -> Path:
    data = NET.read_bytes()
    path = tmp_path / "half.mig"
    path.write_bytes(data[: len(data) // 2])
    return path


def _empty(tmp_path: Path) -> Path:
    path = tmp_path / "empty.mig"
    path.write_bytes(b"")
    return path


def _directory(tmp_path: Path) -> Path:
    return tmp_path


BAD_INPUTS = {
    "missing": (_missing, ["No such file"]),
    "directory": (_directory, ["Is a directory"]),
    "not-a-stream": (_not_a_stream, ["magic", "0x0"]),
    "truncated": (_truncated, ["at 0x"]),
    "empty": (_empty, ["at 0x0"]),
}


@pytest.mark.parametrize("command", ["dump", "check"])
@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_is_one_line_exit_2(tmp_path: Path, case: str, command: str) -> None:
    make, needles = BAD_INPUTS[case]
    result = run(command, make(tmp_path))
    assert result.returncode == 2
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("vmstate: error: ")
    for needle in needles:
        assert needle in lines[0]


def test_debug_shows_traceback(tmp_path: Path) -> None:
    result = run("--debug", "dump", _not_a_stream(tmp_path))
    assert result.returncode != 0
    assert "Traceback" in result.stderr
    assert "magic" in result.stderr
    assert "vmstate: error:" not in result.stderr
