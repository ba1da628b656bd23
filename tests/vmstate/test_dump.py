"""``vmstate dump``'s model and its rendering (vmstate/dump): JSON in pieces equal to json.dumps, text from the model."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices import DEFAULT_REGISTRY
from tests.support.paths import CORPUS
from vmstate.diff.sources import display_kinds
from vmstate.dump import read_dump, render_json, render_text
from vmstate.spill import Blob, Spill, chunks

STREAMS = sorted(p.name for p in CORPUS.iterdir() if ".mig" in p.name)


def _hexed(value: Any) -> Any:
    """The model as the JSON form has it: every byte string as hex."""
    if isinstance(value, (bytes, Blob)):
        return b"".join(chunks(value)).hex()
    if isinstance(value, list):
        return [_hexed(v) for v in value]
    if isinstance(value, dict):
        return {k: _hexed(v) for k, v in value.items()}
    return value


keys = st.text(max_size=4) | st.integers(-5, 5) | st.booleans() | st.none()
scalars = st.integers() | st.booleans() | st.none() | st.text(max_size=6) | st.binary(max_size=40)
trees = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
                     max_leaves=20)


@settings(max_examples=200, deadline=None)
@given(trees, st.integers(0, 16))
def test_json_in_pieces_is_json_dumps_of_the_hexed_model(tree: Any, threshold: int) -> None:
    with Spill(threshold=threshold) as spill:
        kept = _kept(tree, spill)
        assert "".join(render_json(kept)) == json.dumps(_hexed(tree), indent=2)


def _kept(value: Any, spill: Spill) -> Any:
    if isinstance(value, bytes):
        return spill.keep(value)
    if isinstance(value, list):
        return [_kept(v, spill) for v in value]
    if isinstance(value, dict):
        return {k: _kept(v, spill) for k, v in value.items()}
    return value


@pytest.mark.parametrize("name", STREAMS)
def test_a_real_streams_model_renders_as_its_summary(name: str) -> None:
    from streams.files import open_stream
    from streams.qemu import StreamReader, summarize

    with open_stream(CORPUS / name) as source:
        summary = summarize(StreamReader(source, descriptions=DEFAULT_REGISTRY, batch_pages=True), record_digests=False)
    with Spill(threshold=8) as spill:  # nearly every byte string spilled
        model = read_dump(CORPUS / name, DEFAULT_REGISTRY, spill)
        hexed = _hexed(model)
        for block in hexed["ram"]:  # the content digests are the model's addition
            for key in ("content_digest", "content_digest_algorithm", "content_digest_unavailable"):
                block.pop(key, None)
        assert hexed == summary
        text = list(render_text(model, display_kinds()))
    with Spill(threshold=1 << 30) as spill:  # nothing spilled
        assert list(render_text(read_dump(CORPUS / name, DEFAULT_REGISTRY, spill), display_kinds())) == text
    assert text[0].startswith("QEMU stream, file version ")


def test_text_cuts_a_long_value_to_one_line() -> None:
    with Spill(threshold=4) as spill:
        model = {"file_version": 3, "footers": True, "vmdesc": None, "ram": [], "sections": [
            {"section_id": 1, "idstr": "dev", "instance_id": 0, "version": 1, "source": "vmdesc", "size": 300,
             "vmsd_name": "dev",
             "fields": {"blob": spill.keep(bytes(range(200))), "list": [spill.keep(b"\xff" * 100), b"\x01"]}}]}
        lines = list(render_text(model, {}))
    assert lines[-2] == '  blob: "' + bytes(range(200)).hex()[:96] + "..."
    assert lines[-1] == '  list: ["' + "f" * 95 + "..."
