"""The compiled fast paths (``vmstate.compiled``) agree with the interpreter, errors included.

The twin of each description gates every field by an ``exists`` test that
says the same as its ``since_version``: the compiler leaves such fields to
the interpreter, so the twin decodes and encodes the slow way.
"""

from __future__ import annotations

import enum
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_engine_properties import described_records

from vmstate.compiled import plan_for
from vmstate.description import Array, Description, Field, Int, Record, Struct
from vmstate.engine import decode, encode
from vmstate.errors import DecodeError, EncodeError
from vmstate.wire import ByteReader


def _since(minimum: int) -> Any:
    return lambda _view, version: version >= minimum


def interpreted(description: Description) -> Description:
    """The same layout with every field left to the interpreter."""
    fields = []
    for field in description.fields:
        kind = field.kind
        if isinstance(kind, Struct):
            kind = attrs.evolve(kind, description=interpreted(kind.description))
        elif isinstance(kind, Array) and isinstance(kind.element, Struct):
            kind = attrs.evolve(kind, element=attrs.evolve(kind.element, description=interpreted(kind.element.description)))
        fields.append(Field(name=field.name, kind=kind, exists=field.exists or _since(field.since_version)))
    return attrs.evolve(description, fields=tuple(fields),
                        subsections=tuple(interpreted(s) for s in description.subsections))


def _outcome(description: Description, data: bytes, version: int) -> Any:
    try:
        return decode(description, ByteReader(data), version)
    except DecodeError as error:
        return (type(error).__name__, error.offset, error.path, error.message)


@settings(max_examples=300, deadline=None)
@given(described_records(), st.data())
def test_compiled_and_interpreted_agree_on_every_prefix(pair: tuple[Description, Record], data: st.DataObject) -> None:
    description, record = pair
    twin = interpreted(description)
    wire = encode(description, record)
    assert encode(twin, record) == wire
    cuts = {len(wire)} | set(data.draw(st.lists(st.integers(0, max(0, len(wire) - 1)), max_size=12)))
    for cut in sorted(cuts):
        assert _outcome(description, wire[:cut], record.version) == _outcome(twin, wire[:cut], record.version)


QUEUE = Description(name="q", version=1, fields=(
    Field(name="num", kind=Int(width=4)), Field(name="addr", kind=Int(width=8)), Field(name="idx", kind=Int(width=2)),
))
QUEUES = Description(name="qs", version=1, fields=(Field(name="vq", kind=Array(element=Struct(description=QUEUE), count=3)),))


def test_static_runs_are_compiled_and_arrays_of_them_read_at_once() -> None:
    plan = plan_for(QUEUE, 1)
    assert plan.whole is not None and plan.whole.struct.format == ">IQH" and plan.whole.size == 14
    record = Record(version=1, fields={"vq": [Record(version=1, fields={"num": n, "addr": n << 12, "idx": n}) for n in range(3)]})
    wire = encode(QUEUES, record)
    assert wire == b"".join(bytes.fromhex(f"{n:08x}{n << 12:016x}{n:04x}") for n in range(3))
    assert decode(QUEUES, ByteReader(wire), 1) == record
    with pytest.raises(DecodeError) as cut:
        decode(QUEUES, ByteReader(wire[:14 + 5]), 1)
    assert (cut.value.offset, cut.value.path) == (14 + 4, ("vq", 1, "addr"))  # where addr starts


class Color(enum.IntEnum):
    RED = 1


def test_values_the_fast_path_cannot_pack_get_the_interpreters_answer() -> None:
    one = Record(version=1, fields={"num": 1, "addr": 2, "idx": 3})
    assert encode(QUEUE, attrs.evolve(one, fields={**one.fields, "num": Color.RED})) == encode(QUEUE, one)
    for bad, message in ((True, "expected an integer"), (1 << 32, "does not fit"), ("x", "expected an integer")):
        with pytest.raises(EncodeError, match=message) as error:
            encode(QUEUE, attrs.evolve(one, fields={**one.fields, "num": bad}))
        assert error.value.path == ("num",)
    with pytest.raises(EncodeError, match="no value") as missing:
        encode(QUEUE, Record(version=1, fields={"num": 1, "addr": 2}))
    assert missing.value.path == ("idx",)
