"""Shared fixtures: the stream corpus, extendable with VMSTATE_STREAM_DIRS."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "compat_fixtures" / "streams"
#: the README's example pair (real QEMU streams with a slirp ``save_state`` section)
EXAMPLES = ROOT / "compat_fixtures" / "examples"


def stream_files() -> list[Path]:
    """Every ``*.mig`` (or ``*.mig.xz``/``.gz``) in the corpus, the examples and $VMSTATE_STREAM_DIRS."""
    dirs = [CORPUS, EXAMPLES] + [Path(d) for d in os.environ.get("VMSTATE_STREAM_DIRS", "").split(os.pathsep) if d]
    return sorted(p for d in dirs for pattern in ("*.mig", "*.mig.xz", "*.mig.gz") for p in d.glob(pattern))


def stream_bytes(path: Path) -> bytes:
    """The uncompressed bytes of a stream file."""
    from streams.files import open_stream

    with open_stream(path) as source:
        return source.read()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "stream_path" in metafunc.fixturenames:
        files = stream_files()
        metafunc.parametrize("stream_path", files, ids=[p.name for p in files])


@pytest.fixture
def corpus_file() -> "callable":  # type: ignore[valid-type]
    def get(name: str) -> Path:
        return CORPUS / name

    return get


def run_script(script: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run one of the installed console scripts (``vmstate``, ``migration-diff``) as a real subprocess."""
    exe = shutil.which(script)
    if exe is None:
        pytest.fail(f"the `{script}` script is not on PATH; install the project (pip install -e .)")
    return subprocess.run([exe, *map(str, args)], capture_output=True, text=True, timeout=120, check=False)
