"""``vmstate dump``'s model and its rendering (vmstate/dump): JSON in pieces equal to json.dumps, text from the model."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices import DEFAULT_REGISTRY
from tests.support.dump_text import check_dump
from tests.support.paths import CORPUS
from vmstate.dump.kinds import display_kinds
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


def _model(fields: dict[str, Any]) -> dict[str, Any]:
    return {"file_version": 3, "footers": True, "vmdesc": None, "ram": [], "sections": [
        {"section_id": 1, "idstr": "dev", "instance_id": 0, "version": 1, "source": "vmdesc", "size": 300,
         "vmsd_name": "dev", "fields": fields}]}


def test_text_shows_a_long_byte_string_as_its_length_and_head_and_full_shows_every_byte() -> None:
    with Spill(threshold=4) as spill:
        model = _model({"blob": spill.keep(bytes(range(200))), "list": [spill.keep(b"\xff" * 100), b"\x01"],
                        "pad": spill.keep(bytes(40))})
        lines = list(render_text(model, {}))
        full = list(render_text(model, {}, full=True))
    assert lines[-3:] == ["  blob: 200 bytes: " + bytes(range(32)).hex() + "...", '  list: [100 bytes, all ff, "01"]',
                          "  pad: 40 bytes, all 00"]
    hexed = bytes(range(200)).hex()
    assert full[3:] == ["  blob: 200 bytes:", *(f"    {hexed[i:i + 128]}" for i in range(0, 400, 128)),
                        "  list[0]: 100 bytes:", "    " + "ff" * 64, "    " + "ff" * 36, '  list[1]: "01"',
                        "  pad: 40 bytes:", "    " + "00" * 40]


def _vq(num: int, version: int = 1) -> dict[str, Any]:
    return {"version": version, "fields": {"num": num, "desc": 0, "ring": bytes(4)}}


def test_runs_of_all_zero_and_of_identical_items_fold_into_one_line_each() -> None:
    vqs = [_vq(256), _vq(256), _vq(256), _vq(64), _vq(0), _vq(0, version=2), _vq(0), *[_vq(0)] * 1017]
    lines = list(render_text(_model({"vq": vqs, "regs": [0, 0, 7, *[0] * 13]}), {}))
    assert lines[3:] == [
        "  vq[0]: (v1)", "    num: 256", "    desc: 0", '    ring: "00000000"',
        "  vq[1..2]: 2 the same as vq[0]",
        "  vq[3]: (v1)", "    num: 64", "    desc: 0", '    ring: "00000000"',
        "  vq[4]: (v1)", "    num: 0", "    desc: 0", '    ring: "00000000"',  # one zero item shows whole
        "  vq[5]: (v2)", "    num: 0", "    desc: 0", '    ring: "00000000"',  # another version: not in the run
        "  vq[6..1023]: 1018 all zero (v1)",
        "  regs: [0, 0, 7, 0 (13 times)]",
    ]
    full = list(render_text(_model({"vq": vqs}), {}, full=True))
    assert len(full) == 3 + 1024 * 4 and full[-4:] == ["  vq[1023]: (v1)", "    num: 0", "    desc: 0", '    ring: "00000000"']


def test_a_folded_line_escapes_what_came_from_the_input() -> None:
    evil = "\x1b[2J\nvq"
    lines = list(render_text(_model({evil: [_vq(0)] * 5, "x": [_vq(1)] * 4}), {}))
    assert lines[3] == '  "\\x1b[2J\\x0avq"[0..4]: 5 all zero (v1)'
    assert lines[-1] == "  x[1..3]: 3 the same as x[0]"
    assert all(line.isprintable() for line in lines)


#: real streams of every shape: modern and legacy virtio-pci, multiqueue, ppc64, virtio-mmio v2, 2.2 layout, booted
SHAPES = ["pc-7.2-virtio-net-modern.mig", "q35-7.2-virtio-multiqueue.mig", "pseries-7.2-virtio-all-legacy.mig",
          "virt-7.2-virtio-mmio-all-v2.mig", "pc-2.2-virtio-more.mig", "pc-7.2-booted-virtio-legacy.mig.xz",
          "pc-2.1-smp2-hpet4-cdrom.mig", "pc-7.2-virtio-input-modern.mig"]


@pytest.mark.parametrize("threshold", [8, 1 << 20])
@pytest.mark.parametrize("name", SHAPES)
def test_the_folded_text_loses_nothing_and_full_carries_every_value_of_the_json(name: str, threshold: int) -> None:
    """Folded: every list item is shown or inside exactly one fold whose count and claim hold; full: every value."""
    with Spill(threshold=threshold) as spill:  # 8: nearly every byte string a Blob (hex lines in --full)
        model = read_dump(CORPUS / name, DEFAULT_REGISTRY, spill)
        as_json = json.loads("".join(render_json(model)))
        folded = list(render_text(model, display_kinds()))
        full = list(render_text(model, display_kinds(), full=True))
    check_dump(as_json, full, full=True)
    check_dump(as_json, folded, full=False)
    assert len(folded) < len(full)


@pytest.mark.parametrize("name", STREAMS)
def test_a_real_stream_s_folded_dump_is_short(name: str) -> None:
    with Spill() as spill:
        model = read_dump(CORPUS / name, DEFAULT_REGISTRY, spill)
        folded = sum(1 for _ in render_text(model, display_kinds()))
        full = sum(1 for _ in render_text(model, display_kinds(), full=True))
    assert folded <= 1_500  # 281..1,170 lines today; --full: 1,538..64,185
    if "modern" in name or "multiqueue" in name or ("mmio" in name and name.endswith("-v2.mig")):  # 1,024 virtqueue slots per device
        assert full >= 10 * folded


records = st.builds(lambda num, ring, version: {"version": version, "fields": {"num": num, "ring": ring}},
                    st.sampled_from([0, 0, 0, 1, 256]), st.sampled_from([b"", bytes(3), b"\x01\x00\x00", bytes(40)]),
                    st.sampled_from([1, 1, 2]))


@settings(max_examples=150, deadline=None)
@given(st.lists(records, max_size=14), st.lists(st.sampled_from([0, 0, 5]), max_size=20), st.sampled_from([4, 1 << 20]))
def test_folding_any_list_covers_every_item_once(items: list[Any], scalars: list[int], threshold: int) -> None:
    with Spill(threshold=threshold) as spill:
        model = _kept(_model({"vq": items, "regs": scalars, "sub": {"version": 3, "fields": {"vqs": items}}}), spill)
        as_json = json.loads("".join(render_json(model)))
        for full in (False, True):
            lines = list(render_text(model, {}, full=full))
            if items:
                check_dump(as_json, lines, full=full)
