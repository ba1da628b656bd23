"""Every fixture stream decodes to its committed expected decoding."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compat_fixtures.expected import corpus_streams, decoding, golden_path
from tests.support.paths import CORPUS

STREAMS = corpus_streams()


@pytest.mark.parametrize("stream", STREAMS, ids=[s.name for s in STREAMS])
def test_stream_decodes_to_its_golden(stream: Path) -> None:
    golden = golden_path(stream)
    assert golden.exists(), f"no expected decoding for {stream.name}: run compat_fixtures/expected.py --write"
    assert decoding(stream) == json.loads(golden.read_text())


def test_goldens_hold_named_fields_and_ram_digests() -> None:
    golden = json.loads(golden_path(CORPUS / "pc-7.2-virtio-net-legacy.mig").read_text())
    timer = next(s for s in golden["sections"] if s["idstr"] == "timer")
    assert timer["source"] == "typed" and set(timer["fields"]) == {"cpu_ticks_offset", "unused", "cpu_clock_offset"}
    assert golden["machine"] == "pc-i440fx-7.2"
    assert {b["name"] for b in golden["ram"]} >= {"pc.ram", "pc.bios"}
    assert all(len(b["sha256"]) == 64 for b in golden["ram"])
