"""Pytest hooks and fixtures only; the helpers tests share are in tests/support."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.paths import CORPUS
from tests.support.streams import stream_files


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "stream_path" in metafunc.fixturenames:
        files = stream_files()
        metafunc.parametrize("stream_path", files, ids=[p.name for p in files])


@pytest.fixture
def corpus_file() -> "callable":  # type: ignore[valid-type]
    def get(name: str) -> Path:
        return CORPUS / name

    return get
