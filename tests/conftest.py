"""Pytest hooks and fixtures only; the helpers tests share are in tests/support."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.support.paths import CORPUS
from tests.support.streams import stream_files


#: the bytecode cache directory this run made for its subprocesses (removed at its end), if it made one
_PYCACHE: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    """Subprocesses (the CLI tests' ``vmstate``, ``migration-diff``) reuse one bytecode cache for the run.

    Where the environment sets ``PYTHONDONTWRITEBYTECODE``, every subprocess
    compiled each module it imports again; an installed package has its
    bytecode. The cache lives in a temporary directory (``PYTHONPYCACHEPREFIX``),
    never in the tree; xdist's workers inherit it from the controller.
    """
    if os.environ.get("PYTHONDONTWRITEBYTECODE") and not os.environ.get("PYTHONPYCACHEPREFIX"):
        _PYCACHE.append(tempfile.mkdtemp(prefix="vmstate-forge-pycache-"))
        os.environ.pop("PYTHONDONTWRITEBYTECODE")
        os.environ["PYTHONPYCACHEPREFIX"] = _PYCACHE[0]


def pytest_unconfigure(config: pytest.Config) -> None:
    for made in _PYCACHE:
        shutil.rmtree(made, ignore_errors=True)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "stream_path" in metafunc.fixturenames:
        files = stream_files()
        metafunc.parametrize("stream_path", files, ids=[p.name for p in files])


@pytest.fixture
def corpus_file() -> "callable":  # type: ignore[valid-type]
    def get(name: str) -> Path:
        return CORPUS / name

    return get
