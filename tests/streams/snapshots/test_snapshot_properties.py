"""Hypothesis: arbitrary values and device states round-trip through every codec."""

from __future__ import annotations

import io
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.qemu import (
    DeviceState,
    Eof,
    FileHeader,
    SectionFooter,
    SectionHeader,
    SectionType,
    StreamWriter,
)
from streams.snapshots import CODECS, read_records, write_records
from streams.snapshots._values import (
    INT_MAX,
    INT_MIN,
    record_from_plain,
    record_to_plain,
)
from streams.snapshots._window import ContentWindow
from tests.support.strategies import described_records
from vmstate import DEFAULT_LIMITS, Description, Record, encode

CODEC_NAMES = list(CODECS)
# Field names a hostile vmdesc could use, '$' keys included (the JSON codec escapes them).
names = st.text(max_size=8) | st.sampled_from(["$base64", "$", "$$x", "version", "fields"])
leaves = st.integers(INT_MIN, INT_MAX) | st.booleans() | st.binary(max_size=40) | st.text(max_size=8)
records: st.SearchStrategy[Record] = st.deferred(
    lambda: st.builds(
        Record,
        version=st.integers(0, (1 << 32) - 1),
        fields=st.dictionaries(names, values, max_size=4),
        subsections=st.dictionaries(names, records, max_size=2),
    )
)
values: st.SearchStrategy[Any] = st.deferred(lambda: leaves | st.lists(values, max_size=4) | records)


def through_codec(codec: str, item: Any) -> Any:
    chosen = CODECS[codec]
    data = chosen.encode(item)
    window = ContentWindow(io.BytesIO(data), 0, len(data))
    (offset, back), *rest = list(chosen.items(window, DEFAULT_LIMITS))
    assert offset == 0 and not rest
    return back


@settings(max_examples=100, deadline=None)
@given(records, st.sampled_from(CODEC_NAMES))
def test_any_record_tree_survives_every_codec(record: Record, codec: str) -> None:
    item = {"t": "device", "state": record_to_plain(record)}
    back = through_codec(codec, item)
    assert back["t"] == "device"
    assert record_from_plain(back["state"], max_depth=64) == record


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(INT_MIN, INT_MAX) | st.binary(max_size=8) | st.booleans(), max_size=6))
def test_ints_bools_and_bytes_keep_their_types(leaves_: list[Any]) -> None:
    record = Record(version=1, fields={"v": leaves_})
    for codec in CODEC_NAMES:
        back = record_from_plain(through_codec(codec, record_to_plain(record)), max_depth=8)
        assert [type(v) for v in back.fields["v"]] == [type(v) for v in leaves_], codec


def section_stream(description: Description, record: Record) -> list[Any]:
    size = len(encode(description, record))
    return [
        FileHeader(),
        SectionHeader(SectionType.FULL, 1, description.name, 0, record.version),
        DeviceState(description.name, 0, record.version, description, record, "typed", size),
        SectionFooter(1),
        Eof(),
    ]


@settings(max_examples=150, deadline=None)
@given(described_records(), st.sampled_from(CODEC_NAMES))
def test_any_device_state_round_trips_to_the_same_qemu_bytes(pair: tuple[Description, Record], codec: str) -> None:
    description, record = pair
    stream = section_stream(description, record)
    expected = io.BytesIO()
    StreamWriter(expected).write_all(stream)
    snapshot = io.BytesIO()
    write_records(stream, snapshot, codec=codec)
    snapshot.seek(0)

    def ours(idstr: str, instance_id: int, version: int) -> Description | None:
        return description if idstr == description.name else None

    back = list(read_records(snapshot, descriptions=ours))
    assert back == stream
    out = io.BytesIO()
    StreamWriter(out).write_all(back)
    assert out.getvalue() == expected.getvalue()


@pytest.mark.parametrize("bad", [1 << 64, INT_MIN - 1, 1.5, None, {"a": 1}], ids=repr)
def test_values_no_codec_carries_are_refused_on_writing(bad: Any) -> None:
    from vmstate import EncodeError

    with pytest.raises(EncodeError) as caught:
        record_to_plain(Record(version=1, fields={"x": [0, Record(version=1, fields={"y": bad})]}))
    assert caught.value.path == ("x", 1, "y")
