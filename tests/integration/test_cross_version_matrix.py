"""compat_fixtures/cross_version.py on real QEMUs: two rows regenerated agree with the committed matrix.

am53c974 fails 7.2 -> 10.0 (``Missing section footer``) and loads 10.0 -> 7.2;
sb16 migrates both ways.  A missing QEMU is a failure here, never a skip.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from compat_fixtures.matrix_score import DIRECTIONS, load_matrix
from tests.support.paths import ROOT

pytestmark = [pytest.mark.qemu]

MACHINE = "pc-i440fx-7.2"


def test_two_rows_regenerated_agree_with_the_committed_matrix(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "compat_fixtures.cross_version", "--machine", MACHINE,
                          "--only", "am53c974", "--only", "sb16", "--out", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    fresh = {r["device"]: r for r in json.loads((tmp_path / f"{MACHINE}.json").read_text())["rows"]}
    committed = {r["device"]: r for r in load_matrix(MACHINE)["rows"]}
    for device in ("am53c974", "sb16"):
        for direction in DIRECTIONS:
            assert fresh[device][direction]["outcome"] == committed[device][direction]["outcome"], (device, direction)
    failed = fresh["am53c974"]["7.2->10.0"]
    assert failed["outcome"] == "failed"
    assert failed["messages"] == committed["am53c974"]["7.2->10.0"]["messages"]
    assert "Missing section footer for 0000:00:02.0/pciespscsi" in failed["messages"][0]
    assert set(failed["controls"].values()) == {"completed"}  # each version loads its own stream
    assert (tmp_path / failed["stream"]).is_file()
    assert fresh["sb16"]["10.0->7.2"]["outcome"] == "completed" and "stream" not in fresh["sb16"]["10.0->7.2"]
