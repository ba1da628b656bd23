"""Run the installed console scripts as real subprocesses."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

__all__ = ["run_script"]


def run_script(script: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run one of the installed console scripts (``vmstate``, ``migration-diff``) as a real subprocess."""
    exe = shutil.which(script)
    if exe is None:
        pytest.fail(f"the `{script}` script is not on PATH; install the project (pip install -e .)")
    return subprocess.run([exe, *map(str, args)], capture_output=True, text=True, timeout=120, check=False)
