"""Snapshot files as compatibility fixtures: decoded, compared with goldens, written back."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import streams.snapshots._ram_chunks as ram_chunks
from tests.support.paths import ROOT
from vmstate.compat import fixtures as fixture_module
from vmstate.compat.fixtures import format_of, golden_path
from vmstate.compat.snapshot_format import SNAPSHOTS

FIXTURES = ROOT / "compat_fixtures"
SNAPSHOT_FILES = sorted((FIXTURES / "streams" / "snapshots").iterdir())


def test_the_corpus_holds_a_snapshot_in_each_codec() -> None:
    assert {format_of(p)[1] for p in SNAPSHOT_FILES if format_of(p)} == {".msgpack", ".cbor", ".snapshot.json"}
    assert all(format_of(p)[0] is SNAPSHOTS for p in SNAPSHOT_FILES if format_of(p))  # type: ignore[index]


@pytest.mark.parametrize("path", SNAPSHOT_FILES, ids=[p.name for p in SNAPSHOT_FILES])
def test_a_snapshot_decodes_to_its_golden_which_is_its_streams_golden(path: Path) -> None:
    outcome = SNAPSHOTS.run(path, None)
    golden = json.loads(golden_path(FIXTURES, path).read_text())
    assert outcome.decoding == golden
    stem = path.name[: -len(format_of(path)[1])]  # type: ignore[index]
    assert golden == json.loads((FIXTURES / "expected" / f"{stem}.json").read_text())
    assert outcome.rewrite is not None and outcome.rewrite.identical


def test_a_change_to_how_snapshots_are_written_fails_the_rewrite(monkeypatch: pytest.MonkeyPatch) -> None:
    path = next(p for p in SNAPSHOT_FILES if p.suffix == ".msgpack")
    assert SNAPSHOTS.run(path, None).rewrite.identical  # type: ignore[union-attr]
    monkeypatch.setattr(ram_chunks, "RAM_CHUNK_RECORDS", 7)  # a writer that groups RAM pages differently
    rewrite = SNAPSHOTS.run(path, None).rewrite
    assert rewrite is not None and not rewrite.identical and rewrite.first_difference is not None


def test_the_dynamic_check_covers_snapshots(tmp_path: Path) -> None:
    from vmstate.compat import check_fixtures

    for sub in ("streams/snapshots", "expected/snapshots"):
        (tmp_path / sub).mkdir(parents=True)
    source = next(p for p in SNAPSHOT_FILES if p.suffix == ".cbor")
    shutil.copy(source, tmp_path / "streams" / "snapshots" / source.name)
    shutil.copy(golden_path(FIXTURES, source), golden_path(tmp_path, tmp_path / "streams" / "snapshots" / source.name))
    report = check_fixtures(tmp_path)
    assert [(r.fixture, r.decoded, r.rewritten) for r in report.results] == [
        (f"streams/snapshots/{source.name}", True, True)]
    assert fixture_module.formats()[1] is SNAPSHOTS
