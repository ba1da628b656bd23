"""Hypothesis: arbitrary descriptions and values round-trip through the engine."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.strategies import described_records
from vmstate import ByteReader, DecodeError, Description, Record, decode, encode


@settings(max_examples=300, deadline=None)
@given(described_records())
def test_encode_then_decode_is_identity(pair: tuple[Description, Record]) -> None:
    description, record = pair
    data = encode(description, record)
    reader = ByteReader(data)
    decoded = decode(description, reader, record.version)
    assert decoded == record
    assert reader.offset == len(data)
    assert encode(description, decoded) == data


@settings(max_examples=150, deadline=None)
@given(described_records(), st.data())
def test_any_prefix_or_garbage_raises_only_decode_errors(pair: tuple[Description, Record], data: st.DataObject) -> None:
    description, record = pair
    encoded = encode(description, record)
    cut = data.draw(st.integers(0, len(encoded)))
    garbage = data.draw(st.binary(max_size=16))
    for candidate in (encoded[:cut], garbage, encoded[:cut] + garbage):
        try:
            decode(description, ByteReader(candidate), record.version)
        except DecodeError as error:
            assert error.offset is not None
