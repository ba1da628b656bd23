"""``vmstate compat`` and the pytest plugin, run as real subprocesses."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import run_script
from tests.support.paths import ROOT
from vmstate.compat import record_fixtures, schema_text

FIXTURES = ROOT / "compat_fixtures"
DUMPS = FIXTURES / "dump-vmstate"
BASELINE = FIXTURES / "schema" / "vmstate-schema.json"
SMALL = ["virt-7.2-bare-le-mmio.mig.xz", "virt-7.2-bare-be-mmio.mig.xz"]


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return run_script("vmstate", *args)


def without_has_ufo(path: Path) -> Path:
    """The baseline with virtio-net's `has_ufo` dropped, as a careless patch would."""
    data: dict[str, Any] = json.loads(BASELINE.read_text())
    for transport in ("pci", "mmio"):
        part = data["sections"][f"virtio-net@{transport}"]["fields"][0]["layout"]["device_part"]
        part["fields"] = [f for f in part["fields"] if f["name"] != "has_ufo"]
    path.write_text(json.dumps(data))
    return path


def test_diff_of_two_qemu_machine_types() -> None:
    result = run("compat", "diff", DUMPS / "x86_64-pc-i440fx-2.2.json", DUMPS / "x86_64-pc.json")
    assert result.returncode == 0, result.stderr
    assert "compared 214 sections (matched by key)" in result.stdout
    assert "machine types differ (pc-i440fx-2.2 -> pc-i440fx-7.2)" in result.stdout
    assert result.stdout.rstrip().endswith("result: compatible (0 errors, 0 warnings, 0 infos)")


def test_diff_names_device_path_versions_and_why(tmp_path: Path) -> None:
    result = run("compat", "diff", BASELINE, without_has_ufo(tmp_path / "new.json"))
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert "ERROR   old->new, new->old   virtio-net@mmio: virtio.{virtio-net-device}.has_ufo  (v2..11 -> v2..11)" in lines
    assert any(line.strip().startswith("field-removed: `has_ufo` (uint8, 1 byte) was removed without a version bump")
               for line in lines)
    assert lines[-1] == "result: incompatible (2 errors, 0 warnings, 0 infos)"


def test_diff_json(tmp_path: Path) -> None:
    result = run("compat", "diff", "--json", BASELINE, without_has_ufo(tmp_path / "new.json"))
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["compatible"] is False and report["counts"] == {"error": 2, "warning": 0, "info": 0}
    assert report["findings"][0] == {
        "severity": "error",
        "directions": ["old->new", "new->old"],
        "rule": "field-removed",
        "device": "virtio-net@mmio",
        "path": "virtio.{virtio-net-device}.has_ufo",
        "old_versions": "2..11",
        "new_versions": "2..11",
        "reason": report["findings"][0]["reason"],
    }


def test_diff_of_today_against_the_baseline_and_qemu() -> None:
    assert run("compat", "diff", BASELINE, "@today").returncode == 0
    ours_then_qemu = run("compat", "diff", "@today", DUMPS / "x86_64-pc.json")
    # QEMU 7.2 refuses virtio-net below v11 and virtio-serial below v3, which we still load: warnings;
    # the errors are the known differences of our machine sections (test_compat_qemu.KNOWN_MACHINE_DIFFERENCES).
    # The command says what the library finds for the same pair, counts included:
    from vmstate.compat.export import export_schema
    from vmstate.compat.rules import compare_sets
    from vmstate.compat.sources import load_schema, schema_from_json

    report = compare_sets(schema_from_json(export_schema(), "@today"), load_schema(DUMPS / "x86_64-pc.json"))
    errors, warnings, infos = (report.count(s) for s in ("error", "warning", "info"))
    assert errors > 0 and ours_then_qemu.returncode == 1
    assert f"result: incompatible ({errors} errors, {warnings} warnings, {infos} infos)" in ours_then_qemu.stdout
    assert "virtio" not in "".join(line for line in ours_then_qemu.stdout.splitlines() if line.startswith("ERROR"))
    # --fail-on error ignores the warnings, not those errors
    assert run("compat", "diff", "--fail-on", "error", "@today", DUMPS / "x86_64-pc.json").returncode == 1
    assert run("compat", "diff", "--fail-on", "error", BASELINE, "@today").returncode == 0


@pytest.mark.parametrize(("content", "message"), [(None, "No such file or directory"), ("{", "not JSON")])
def test_diff_errors_exit_2_with_one_line(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "schema.json"
    if content is not None:
        path.write_text(content)
    result = run("compat", "diff", path, BASELINE)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("vmstate: error: ") and message in result.stderr


def test_schema_prints_todays_export() -> None:
    result = run("compat", "schema")
    assert result.returncode == 0 and result.stdout == schema_text() == BASELINE.read_text()


def test_record_then_check(tmp_path: Path) -> None:
    target = tmp_path / "fixtures"
    streams = [FIXTURES / "streams" / name for name in SMALL]
    recorded = run("compat", "record", target, *streams, "--origin", "qemu 7.2")
    assert recorded.returncode == 0, recorded.stderr
    assert recorded.stdout.splitlines() == [
        f"recorded streams/{name} and expected/{name.split('.mig')[0]}.json" for name in SMALL]
    again = run("compat", "record", target, streams[0])
    assert again.returncode == 2 and "recorded fixtures are never rewritten" in again.stderr
    assert run("compat", "record", target).returncode == 2  # neither streams nor --adopt
    checked = run("compat", "check", target)
    assert checked.returncode == 0, checked.stdout
    assert checked.stdout.strip() == f"{target}: 2 fixtures, 2 ok, 0 incompatible, 0 errors: compatible"
    as_json = json.loads(run("compat", "check", "--json", target).stdout)
    assert as_json["exit_code"] == 0 and [f["status"] for f in as_json["fixtures"]] == ["ok", "ok"]
    golden = target / "expected" / "virt-7.2-bare-le-mmio.json"
    golden.write_text(golden.read_text().replace("virt-7.2", "virt-9.9"))
    tampered = run("compat", "check", target)
    assert tampered.returncode == 2
    assert "LEDGER       expected/virt-7.2-bare-le-mmio.json: recorded golden was rewritten" in tampered.stdout
    assert 'decodes differently from its golden: machine: golden "virt-9.9", today "virt-7.2"' in tampered.stdout


def test_check_exit_1_when_a_fixture_no_longer_decodes_to_its_golden(tmp_path: Path) -> None:
    (tmp_path / "streams").mkdir()
    (tmp_path / "expected").mkdir()
    shutil.copy(FIXTURES / "streams" / SMALL[0], tmp_path / "streams")
    golden = json.loads((FIXTURES / "expected" / "virt-7.2-bare-le-mmio.json").read_text())
    golden["sections"][0]["version"] = 1
    (tmp_path / "expected" / "virt-7.2-bare-le-mmio.json").write_text(json.dumps(golden))
    result = run("compat", "check", tmp_path)
    assert result.returncode == 1
    assert result.stdout.splitlines()[0] == "INCOMPATIBLE streams/virt-7.2-bare-le-mmio.mig.xz"


PLUGIN_TESTS = '''
from vmstate.compat.pytest_plugin import assert_fixtures_compatible

def test_each(vmstate_compat_fixture):
    vmstate_compat_fixture.check()

def test_all():
    assert_fixtures_compatible({directory!r})
'''


def test_pytest_plugin_runs_a_projects_fixtures(tmp_path: Path) -> None:
    directory = tmp_path / "compat"
    record_fixtures(directory, [FIXTURES / "streams" / name for name in SMALL])
    (tmp_path / "test_theirs.py").write_text(PLUGIN_TESTS.format(directory=str(directory)))
    command = [sys.executable, "-m", "pytest", "-q", "-p", "vmstate.compat.pytest_plugin", "-p", "no:cacheprovider",
               "--vmstate-compat-dir", str(directory), str(tmp_path / "test_theirs.py")]
    passed = subprocess.run(command, check=False, capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert passed.returncode == 0, passed.stdout
    assert "3 passed" in passed.stdout
    (directory / "streams" / SMALL[0]).unlink()
    failed = subprocess.run(command, check=False, capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert failed.returncode == 1
    assert "streams/virt-7.2-bare-le-mmio.mig.xz: recorded fixture was deleted" in failed.stdout
    assert "1 failed, 1 passed" in failed.stdout


def test_record_never_writes_through_a_symlink(tmp_path: Path) -> None:
    fixtures = tmp_path / "fixtures"
    (fixtures / "streams").mkdir(parents=True)
    aside = tmp_path / "aside.mig.xz"
    (fixtures / "streams" / SMALL[0]).symlink_to(aside)  # dangling: exists() is False, lexists() True
    result = run("compat", "record", fixtures, FIXTURES / "streams" / SMALL[0])
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "never rewritten" in result.stderr
    assert not aside.exists() and (fixtures / "streams" / SMALL[0]).is_symlink()
