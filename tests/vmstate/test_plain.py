"""The one record <-> plain converter: each format's bytes policy, and the way back."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vmstate import EncodeError, Record
from vmstate.plain import DIFF, INT_MAX, INT_MIN, JSON, SNAPSHOT, record_from_plain, record_to_plain, to_plain

names = st.text(max_size=6)
leaves = st.integers(INT_MIN, INT_MAX) | st.booleans() | st.binary(max_size=24)
records: st.SearchStrategy[Record] = st.deferred(
    lambda: st.builds(
        Record,
        version=st.integers(0, (1 << 32) - 1),
        fields=st.dictionaries(names, values, max_size=3),
        subsections=st.dictionaries(names, records, max_size=2),
    )
)
values: st.SearchStrategy[Any] = st.deferred(lambda: leaves | st.lists(values, max_size=3) | records)


def _hexed(plain: Any) -> Any:
    """A snapshot's plain tree with its bytes as hex: what the JSON policy gives."""
    if isinstance(plain, bytes):
        return plain.hex()
    if isinstance(plain, list):
        return [_hexed(v) for v in plain]
    if isinstance(plain, dict):
        return {k: _hexed(v) for k, v in plain.items()}
    return plain


def _pruned(plain: Any) -> Any:
    """A diff's plain tree less its empty subsection maps: what the snapshot policy gives."""
    if isinstance(plain, list):
        return [_pruned(v) for v in plain]
    if isinstance(plain, dict):
        return {k: _pruned(v) for k, v in plain.items() if not (k == "subsections" and v == {} and "fields" in plain)}
    return plain


@settings(max_examples=150, deadline=None)
@given(records)
def test_the_policies_differ_only_in_bytes_and_empty_subsections(record: Record) -> None:
    snapshot = record_to_plain(record, SNAPSHOT)
    assert record_from_plain(snapshot, max_depth=64) == record
    assert record_to_plain(record, JSON) == _hexed(snapshot)
    json.dumps(record_to_plain(record, JSON))  # JSON-ready as it is
    diff = record_to_plain(record, DIFF)
    assert _pruned(diff) == snapshot
    assert all("subsections" in node for node in _records_in(diff))


def _records_in(plain: Any) -> list[dict[str, Any]]:
    found, stack = [], [plain]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict) and "fields" in node:
            found.append(node)
            stack.extend(node["fields"].values())
            stack.extend(node.get("subsections", {}).values())
    return found


def test_bytes_like_leaves_and_tuples_become_the_formats_values() -> None:
    record = Record(version=3, fields={"b": bytearray(b"\x01\xff"), "m": memoryview(b"ab"), "t": (1, b"\x00")})
    assert record_to_plain(record, JSON)["fields"] == {"b": "01ff", "m": "6162", "t": [1, "00"]}
    assert record_to_plain(record, SNAPSHOT)["fields"] == {"b": b"\x01\xff", "m": b"ab", "t": [1, b"\x00"]}
    assert record_to_plain(record, DIFF) == {"version": 3, "fields": {"b": b"\x01\xff", "m": b"ab", "t": [1, b"\x00"]},
                                              "subsections": {}}


@pytest.mark.parametrize("bad", [1 << 64, INT_MIN - 1, 1.5, None], ids=repr)
def test_only_the_snapshot_policy_refuses_what_no_codec_carries(bad: Any) -> None:
    record = Record(version=1, fields={"x": [Record(version=1, fields={"y": bad})]})
    with pytest.raises(EncodeError) as caught:
        record_to_plain(record, SNAPSHOT)
    assert caught.value.path == ("x", 0, "y")
    assert to_plain(record, JSON)["fields"]["x"][0]["fields"]["y"] == bad
    assert to_plain(record, DIFF)["fields"]["x"][0]["fields"]["y"] == bad


_slot_values = st.sampled_from([0, 1, True, False, -1, "a", None, b"\x00", 0.0, -0.0, [0, 0], [False, 0], (1,)])
_slots = st.builds(Record, version=st.integers(0, 2), fields=st.dictionaries(st.sampled_from("ab"), _slot_values, max_size=2))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([0, 1, 2]), max_size=12), st.lists(_slots, min_size=3, max_size=3), st.data())
def test_runs_of_equal_list_items_convert_as_each_would_alone(picks: list[int], choices: list[Record], data: Any) -> None:
    """A list of records (virtio's queue slots) with runs of equal ones, ``True`` beside an equal ``1`` among them."""
    items: list[Any] = [choices[i] for i in picks]
    if data.draw(st.booleans()) and items:
        items.insert(data.draw(st.integers(0, len(items))), Record(version=0, fields={"a": b"\x00"}))
    record = Record(version=1, fields={"vq": items})
    for policy in (JSON, DIFF):
        plain = record_to_plain(record, policy)
        alone = [record_to_plain(item, policy) if isinstance(item, Record) else item for item in items]
        assert repr(plain["fields"]["vq"]) == repr(alone)  # as text: True is not 1
        converted = [id(item["fields"]) for item in plain["fields"]["vq"]]
        assert len(set(converted)) == len(converted)  # no two items share a dict (nor a list: below)
        lists = [id(v) for item in plain["fields"]["vq"] for v in item["fields"].values() if isinstance(v, list)]
        assert len(set(lists)) == len(lists)
