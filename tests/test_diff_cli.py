"""The installed ``migration-diff`` script (and ``vmstate diff``), run as a real subprocess."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path


from vmstate import __version__

from conftest import ROOT, run_script

EXAMPLES = ROOT / "compat_fixtures" / "examples"
BEFORE = EXAMPLES / "pc-net-balloon-before.mig.xz"
AFTER = EXAMPLES / "pc-net-balloon-after.mig.xz"


def run(*args: str | Path, script: str = "migration-diff") -> subprocess.CompletedProcess[str]:
    return run_script(script, *args)


def test_version_and_help() -> None:
    version = run("--version")
    assert (version.returncode, version.stdout.strip()) == (0, f"migration-diff, version {__version__}")
    for args in (["--help"], ["-h"]):
        result = run(*args)
        assert result.returncode == 0 and result.stdout.startswith("Usage: migration-diff")
    assert run("diff", "--help", script="vmstate").stdout.startswith("Usage: vmstate diff")


def test_the_bundled_example_pair_differs_in_link_and_balloon_only() -> None:
    result = run(BEFORE, AFTER)
    assert result.returncode == 1, result.stderr
    assert result.stderr == ""
    changes = [line for line in result.stdout.splitlines() if not line.startswith(("---", "+++"))]
    assert len(changes) == 2
    assert changes[0].endswith("/virtio-net: virtio.device.status: 1 -> 0")
    assert changes[1].endswith("/virtio-balloon: virtio.device.num_pages: 0 -> 2048")


def test_same_input_exits_0_and_vmstate_diff_agrees() -> None:
    for script in ("migration-diff", "vmstate"):
        args = (BEFORE, BEFORE) if script == "migration-diff" else ("diff", BEFORE, BEFORE)
        result = run(*args, script=script)
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines()[-1] == "no differences"


def test_json_output_is_the_documented_schema() -> None:
    result = run("--json", BEFORE, AFTER)
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["schema"] == "vmstate-forge/migration-diff/1"
    assert report["identical"] is False and report["ram"] == [] and report["header"] == []
    paths = [(s["section"].rsplit("/", 1)[-1], c["path"], c["a"], c["b"]) for s in report["sections"] for c in s["changes"]]
    assert paths == [("virtio-net", "virtio.device.status", 1, 0), ("virtio-balloon", "virtio.device.num_pages", 0, 2048)]


def test_summary_ignore_and_section_options() -> None:
    summary = run("--summary", BEFORE, AFTER)
    assert summary.returncode == 1
    assert summary.stdout.splitlines()[-1] == "2 sections differ, 0 RAM pages differ"
    assert run("--ignore", "*.status", "--ignore", "*num_pages", BEFORE, AFTER).returncode == 0
    only_net = run("--section", "*virtio-net", BEFORE, AFTER)
    assert only_net.returncode == 1 and "virtio-balloon" not in only_net.stdout


def test_color_always_never_and_auto_when_piped() -> None:
    assert "\x1b[" in run("--color", "always", BEFORE, AFTER).stdout
    assert "\x1b[" not in run("--color", "never", BEFORE, AFTER).stdout
    assert "\x1b[" not in run(BEFORE, AFTER).stdout  # auto, and stdout is a pipe
    assert run(BEFORE, AFTER).stderr == ""  # no progress bar when stderr is not a terminal


def _bad_inputs(tmp_path: Path) -> dict[str, Path]:
    from streams.qemu.files import open_stream

    with open_stream(BEFORE) as handle:
        data = handle.read()
    cases = {
        "truncated": data[: len(data) // 2],
        "not a stream": b"hello, world\n" * 10,
        "wrong magic": b"QEVX" + data[4:],
        "empty": b"",
    }
    paths = {}
    for name, content in cases.items():
        paths[name] = tmp_path / (name.replace(" ", "-") + ".mig")
        paths[name].write_bytes(content)
    paths["missing"] = tmp_path / "no-such-file.mig"
    return paths


def test_bad_files_give_one_line_and_exit_2(tmp_path: Path) -> None:
    for name, path in _bad_inputs(tmp_path).items():
        for args in ((BEFORE, path), (path, BEFORE)):
            result = run(*args)
            assert result.returncode == 2, (name, result.stdout, result.stderr)
            lines = result.stderr.splitlines()
            assert len(lines) == 1 and lines[0].startswith("migration-diff: error: "), (name, result.stderr)
            assert "Traceback" not in result.stderr
    truncated = run(BEFORE, tmp_path / "truncated.mig")
    assert "0x" in truncated.stderr or "offset" in truncated.stderr


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mig"
    bad.write_bytes(b"QEVM\x00\x00\x00\x03\x07")
    result = run("--debug", BEFORE, bad)
    assert result.returncode == 2 and "Traceback" in result.stderr
