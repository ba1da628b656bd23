"""The packages type-check: mypy finds no error in vmstate/, devices/ or streams/."""

from __future__ import annotations

import subprocess
import sys

from tests.support.paths import ROOT


def test_mypy_finds_no_error_in_the_packages(tmp_path) -> None:  # type: ignore[no-untyped-def]
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path), "--python-version", "3.11",
         "vmstate", "devices", "streams"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("Success:")
