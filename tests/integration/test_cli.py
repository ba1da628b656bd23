"""End-to-end tests of the installed ``vmstate`` script, run as a real subprocess."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import run_script
from tests.support.dump_text import check_dump
from tests.support.paths import CORPUS
from vmstate import __version__

NET = CORPUS / "pc-7.2-virtio-net-legacy.mig"
OLD = CORPUS / "pc-2.2-virtio-all.mig"


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return run_script("vmstate", *args)


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
    # the 2.2 layout has no vmdesc; our descriptions name every section of it
    assert old["raw_bytes"] == net["raw_bytes"] == 0
    assert {s["source"] for s in old["sections"]} <= {"typed", "records"}


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
    assert result.returncode == 2  # like without --debug: unreadable input
    assert "Traceback" in result.stderr
    assert "magic" in result.stderr
    assert "vmstate: error:" not in result.stderr


def test_check_reports_every_file_even_after_an_unreadable_one(tmp_path: Path) -> None:
    good = CORPUS / "pc-7.2-virtio-rng-legacy.mig"
    empty = tmp_path / "empty.mig"
    empty.write_bytes(b"")
    result = run("check", empty, tmp_path / "missing.mig", good)
    assert result.returncode == 2
    assert "empty input" in result.stderr and "No such file" in result.stderr
    assert f"{good}: " in result.stdout and "re-encoded identical" in result.stdout
    as_json = json.loads(run("check", "--json", empty, good).stdout)
    assert "error" in as_json[0] and as_json[1]["identical"] is True


def test_check_fails_when_a_virtio_section_falls_back_to_the_vmdesc(tmp_path: Path) -> None:
    data = bytearray((CORPUS / "pc-7.2-virtio-net-legacy.mig").read_bytes())
    header = b"0000:00:02.0/virtio-net" + bytes(4) + (11).to_bytes(4, "big")
    num_queues_at = data.index(header) + len(header) + 363
    data[num_queues_at : num_queues_at + 4] = (5000).to_bytes(4, "big")
    odd = tmp_path / "odd.mig"
    odd.write_bytes(bytes(data))
    # the vmdesc still sizes every byte, but only as one opaque `virtio` blob: a failure to name it
    result = run("check", odd)
    assert result.returncode == 1
    summary = result.stdout.splitlines()[0]
    assert "re-encoded identical" in summary and "1 section(s) NOT NAMED" in summary
    assert "NOT NAMED: our description did not fit" in result.stdout and "VIRTIO_QUEUE_MAX" in result.stdout
    assert run("check", "--allow-unnamed", odd).returncode == 0
    report = json.loads(run("check", "--json", "--allow-unnamed", odd).stdout)[0]
    assert report["unnamed_sections"] == 1 and report["opaque_bytes"] > 1000
    net = next(s for s in report["sections"] if s["idstr"].endswith("virtio-net"))
    assert net["source"] == "vmdesc" and "VIRTIO_QUEUE_MAX" in net["unnamed"]
    # --strict: every byte named; the untouched stream passes it, the fallback does not
    assert run("check", "--strict", "--allow-unnamed", odd).returncode == 1
    assert run("check", "--strict", CORPUS / "pc-7.2-virtio-net-legacy.mig").returncode == 0


def test_describe_lists_and_exports_descriptions() -> None:
    listing = run("describe")
    assert listing.returncode == 0
    assert "virtio-net@pci" in listing.stdout and "timer" in listing.stdout
    schema = json.loads(run("describe", "virtio-net@mmio").stdout)
    layout = schema["fields"][0]["layout"]
    assert schema["name"] == "virtio-net" and layout["transport"] == "mmio"
    assert layout["device_part"]["name"] == "virtio-net-device"
    assert [s["name"] for s in layout["virtio"]["subsections"]][0] == "virtio/device_endian"
    assert run("describe", "no-such-thing").returncode == 2


def test_describe_stream_prints_qemus_vmdesc() -> None:
    whole = run("describe", "--stream", NET)
    assert whole.returncode == 0, whole.stderr
    vmdesc = json.loads(whole.stdout)
    assert vmdesc["page_size"] == 4096 and any(d["name"] == "timer" for d in vmdesc["devices"])
    one = run("describe", "--stream", NET, "timer")
    assert json.loads(one.stdout)["vmsd_name"] == "timer"
    assert run("describe", "--stream", NET, "no-such-section").returncode == 2
    old = run("describe", "--stream", OLD)
    assert old.returncode == 1 and old.stdout == "" and "no vmdesc trailer" in old.stderr


def test_describe_stream_tells_truncation_from_absence(tmp_path: Path) -> None:
    """A 7.2 stream cut short lost its vmdesc; a 2.2 stream never had one (machine types before 2.3)."""
    cut = tmp_path / "cut.mig"
    cut.write_bytes(NET.read_bytes()[:340000])
    truncated = run("describe", "--stream", cut)
    assert truncated.returncode == 2 and truncated.stdout == ""
    (line,) = truncated.stderr.splitlines()
    assert line.startswith(f"vmstate: error: {cut}: no vmdesc trailer found, but the stream is truncated (at 0x")
    assert line.endswith("): a trailer would be at its end")
    old = run("describe", "--stream", OLD)
    assert old.returncode == 1
    assert old.stderr == f"vmstate: {OLD}: no vmdesc trailer: the stream is complete, and machine types before 2.3 write none\n"


def test_dump_names_values_and_shows_text_buffers() -> None:
    lines = run("dump", CORPUS / "virt-7.2-bare-be-mmio.mig.xz").stdout.splitlines()
    assert lines.count("      device_endian: big (2)") == 6
    net = run("dump", NET).stdout.splitlines()
    assert '  runstate: "prelaunch"' in net
    assert '  "channels[0].next_transition_time": 27462700' in net
    as_json = json.loads(run("dump", "--json", NET).stdout)
    (state,) = [s for s in as_json["sections"] if s["idstr"] == "globalstate"]
    assert state["fields"]["runstate"].startswith("7072656c61756e6368")  # JSON keeps the hex


def test_dump_folds_for_reading_while_full_and_json_carry_every_value() -> None:
    """q35 multiqueue: five modern virtio devices, 1,024 virtqueue slots each, most of them unused."""
    stream = CORPUS / "q35-7.2-virtio-multiqueue.mig"
    folded, full, as_json = run("dump", stream), run("dump", "--full", stream), run("dump", "--json", stream)
    assert folded.returncode == full.returncode == as_json.returncode == 0, folded.stderr + full.stderr
    lines, every = folded.stdout.splitlines(), full.stdout.splitlines()
    check_dump(json.loads(as_json.stdout), every, full=True)
    check_dump(json.loads(as_json.stdout), lines, full=False)
    assert len(lines) < 1_000 < 50_000 < len(every)  # 753 and 54,741 lines
    assert "      vq[0..1023]: 1024 all zero (v1)" in lines
    assert any(line.startswith("ram pc.ram: 0x1000000 bytes, ") and ", xxh3-128 " in line for line in lines)
