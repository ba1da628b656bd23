"""QEMU 10.0's mapped-ram files end to end: the installed scripts on them, and QEMU 10.0 loading what we write.

QEMU loads a mapped-ram file with the capability set on the incoming side
(``migrate-set-capabilities``, then ``migrate-incoming file:PATH``); it says
``completed`` in ``query-migrate`` or exits.
"""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path

import pytest

from compat_fixtures.generate_formats import PAUSED, restore
from compat_fixtures.qemu_versions import QemuMissing, qemu
from streams.records import RamFlag
from tests.support.cli import run_script
from tests.support.paths import ROOT
from tests.support.qemu_driver import qmp_tools

FORMATS = ROOT / "compat_fixtures" / "formats"

pytestmark = [pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("formats")
    return {name: restore(FORMATS / f"{name}.mig.xz", work / f"{name}.mig") for name in ("pc-10.0-plain", "pc-10.0-mapped-ram")}


def loaded_by_ten(path: Path, tmp_path: Path, capabilities: tuple[str, ...] = ()) -> str:
    """QEMU 10.0's incoming status for ``path``: ``completed``, or ``failed`` (QEMU exits on a failed load)."""
    from qemu.qmp import ExecInterruptedError

    try:
        argv = [*qemu("10.0").command("qemu-system-x86_64"), *PAUSED, "-incoming", "defer"]
    except QemuMissing as exc:
        pytest.fail(str(exc))
    tools = qmp_tools()
    status = "none"
    with tools.vm(argv, tmp_path) as qmp:
        try:
            if capabilities:
                tools.command(qmp, "migrate-set-capabilities",
                              capabilities=[{"capability": c, "state": True} for c in capabilities])
            uri = f"file:{path}" if capabilities else f"exec:cat {path}"
            tools.command(qmp, "migrate-incoming", uri=uri)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and status not in ("completed", "failed"):
                status = tools.command(qmp, "query-migrate").get("status", "none")
                time.sleep(0.1)
        except (EOFError, ConnectionError, ExecInterruptedError):
            return "failed"
    return status


def vmstate(*args: str | Path) -> str:
    done = run_script("vmstate", *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.qemu
def test_ten_loads_its_own_mapped_ram_file_and_refuses_it_without_the_capability(files: dict[str, Path], tmp_path: Path) -> None:
    assert loaded_by_ten(files["pc-10.0-mapped-ram"], tmp_path, ("mapped-ram",)) == "completed"
    assert loaded_by_ten(files["pc-10.0-mapped-ram"], tmp_path) == "failed"


@pytest.mark.qemu
def test_ten_loads_the_mapped_ram_file_we_write_from_a_snapshot_of_a_plain_stream(files: dict[str, Path], tmp_path: Path) -> None:
    snapshot, ours = tmp_path / "plain.msgpack", tmp_path / "ours.mig"
    vmstate("convert", files["pc-10.0-plain"], snapshot)
    vmstate("convert", "--layout", "mapped-ram", snapshot, ours)
    assert "re-encoded identical" in vmstate("check", ours)
    assert ours.stat().st_blocks * 512 < ours.stat().st_size // 10  # sparse, as QEMU writes it
    assert loaded_by_ten(ours, tmp_path, ("mapped-ram",)) == "completed"


@pytest.mark.qemu
def test_ten_loads_the_plain_stream_we_write_from_a_mapped_ram_snapshot(files: dict[str, Path], tmp_path: Path) -> None:
    snapshot, ours = tmp_path / "mapped.cbor", tmp_path / "ours.mig"
    vmstate("convert", files["pc-10.0-mapped-ram"], snapshot)
    vmstate("convert", "--layout", "plain", snapshot, ours)
    assert loaded_by_ten(ours, tmp_path) == "completed"


@pytest.mark.qemu
def test_ten_loads_a_stream_with_a_multifd_flush_record(files: dict[str, Path], tmp_path: Path) -> None:
    """Without multifd the loader syncs no channel at MULTIFD_FLUSH (migration/ram.c): the record is harmless."""
    plain = files["pc-10.0-plain"].read_bytes()
    at = plain.index(b"\x02\x00\x00\x00\x01", 0x20) + 5
    eos = plain.index(b"\x00\x00\x00\x00\x00\x00\x00\x10\x7e\x00\x00\x00\x01\x08\x00\x0b", at)
    flushed = tmp_path / "flushed.mig"
    flushed.write_bytes(plain[:eos] + struct.pack(">Q", RamFlag.MULTIFD_FLUSH) + plain[eos:])
    assert "ram: 1 MULTIFD_FLUSH records" in vmstate("dump", flushed)
    assert loaded_by_ten(flushed, tmp_path) == "completed"


def test_dump_check_and_extract_through_the_scripts(files: dict[str, Path], tmp_path: Path) -> None:
    text = vmstate("dump", files["pc-10.0-mapped-ram"])
    assert "ram pc.ram: 0x1000000 bytes, 0 pages, 0 zero pages, mapped-ram bitmap at 0x8e, pages at 0x100000" in text
    assert "command SWITCHOVER_START" in text
    summary = json.loads(vmstate("dump", "--json", files["pc-10.0-mapped-ram"]))
    assert summary["ram"][0]["mapped_ram"] == {"version": 1, "page_size": 4096, "bitmap_offset": 0x8E, "pages_offset": 0x100000}
    plain_summary = json.loads(vmstate("dump", "--json", files["pc-10.0-plain"]))
    assert [b["content_digest"] for b in summary["ram"]] == [b["content_digest"] for b in plain_summary["ram"]]
    assert "re-encoded identical" in vmstate("check", FORMATS / "pc-10.0-mapped-ram.mig.xz")
    for name in files:
        vmstate("extract", files[name], tmp_path / name)
    plain = sorted((tmp_path / "pc-10.0-plain" / "ram").iterdir())
    mapped = sorted((tmp_path / "pc-10.0-mapped-ram" / "ram").iterdir())
    assert [p.name for p in plain] == [p.name for p in mapped]
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(plain, mapped))


def test_migration_diff_of_a_mapped_ram_file_and_a_plain_stream_finds_no_ram_difference(files: dict[str, Path]) -> None:
    done = run_script("migration-diff", "--json", files["pc-10.0-plain"], files["pc-10.0-mapped-ram"])
    assert done.returncode == 1, done.stderr  # the clocks and the capability differ
    report = json.loads(done.stdout)
    assert report["ram"] == []
    assert {s["section"] for s in report["sections"]} == {"mc146818rtc"}
    # and with the capability left out of the picture, nothing else differs
    done = run_script("migration-diff", "--ignore", "mc146818rtc", "--ignore", "configuration*",
                      files["pc-10.0-plain"], files["pc-10.0-mapped-ram"])
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_bad_header_is_one_line_naming_offset_and_block(files: dict[str, Path], tmp_path: Path) -> None:
    bad = restore(FORMATS / "pc-10.0-mapped-ram.mig.xz", tmp_path / "bad.mig")
    with open(bad, "r+b") as file:
        file.seek(0x72 + 20)
        file.write(struct.pack(">Q", 1 << 62))
    done = run_script("vmstate", "check", bad)
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "at 0x86 in ram: pc.ram" in done.stderr and "past the file's end" in done.stderr
