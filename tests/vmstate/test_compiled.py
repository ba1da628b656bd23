"""The compiled plan (``vmstate.compiled``) agrees with the interpreter, errors included.

The interpreter gates every field by itself; ``engine.interpreted()`` runs
it alone, the reference.  Hypothesis draws descriptions (static runs, version
gates, ``exists`` tests, variable lengths, structs, arrays of static
structs, subsections), versions, values (some not on the wire at that
version, some the wrong shape) and inputs (every kind of cut and mutation),
and each must give the same bytes, records and errors on both paths; so
must every device section of real QEMU streams.
"""

from __future__ import annotations

import enum
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices import DEFAULT_REGISTRY
from streams.files import open_stream
from streams.qemu.reader import StreamReader
from streams.records import DeviceState
from tests.support.paths import CORPUS
from vmstate.compiled import plan_for
from vmstate.description import (
    Array,
    Bool,
    Buffer,
    Description,
    Field,
    Int,
    Kind,
    Prefixed,
    Record,
    Struct,
    Unused,
)
from vmstate.engine import decode, encode, interpreted
from vmstate.errors import DecodeError, EncodeError
from vmstate.limits import DEFAULT_LIMITS, Limits
from vmstate.wire import ByteReader

STREAMS = CORPUS


def _always(_state: Any) -> bool:
    return True


def _odd(gate: str) -> Any:
    def exists(view: Any, _version: int) -> bool:
        return bool(getattr(view, gate) & 1)

    return exists


ints = st.builds(Int, width=st.sampled_from([1, 2, 4, 8]), signed=st.booleans(), little=st.booleans())
scalars = st.one_of(ints, st.just(Bool()))
statics = st.one_of(
    scalars,
    st.builds(Buffer, size=st.integers(0, 6)),
    st.builds(Unused, size=st.integers(0, 3)),
    st.builds(Array, element=scalars, count=st.integers(0, 4)),
)


@st.composite
def static_layouts(draw: st.DrawFn, name: str) -> Description:
    """A description that compiles to one static run (arrays of it are read at once), or nearly."""
    count = draw(st.integers(1, 4))
    fields = tuple(Field(name=f"e{i}", kind=draw(statics), since_version=draw(st.sampled_from([0, 0, 2])))
                   for i in range(count))
    subsections = ()
    if draw(st.integers(0, 4)) == 0:  # an element with a subsection is no whole run: the interpreter's
        subsections = (Description(name=f"{name}/x", version=1, fields=(Field(name="x", kind=Int(width=1)),),
                                   needed=_always),)
    return Description(name=name, version=draw(st.integers(1, 3)), fields=fields, subsections=subsections)


@st.composite
def layouts(draw: st.DrawFn, name: str = "d", depth: int = 0) -> Description:
    fields: list[Field] = []
    shapes = ["static"] * 4 + ["prefixed", "vbuffer", "varray", "exists"] + (["struct", "structs"] if depth < 2 else [])
    for i in range(draw(st.integers(0, 6))):
        shape = draw(st.sampled_from(shapes))
        since = draw(st.sampled_from([0, 0, 1, 2, 3]))
        exists = None
        kind: Kind
        if shape == "static":
            kind = draw(statics)
        elif shape == "prefixed":
            kind = Prefixed(prefix_width=draw(st.sampled_from([1, 2, 4])))
        elif shape in ("vbuffer", "varray"):
            counter = f"n{i}"
            fields.append(Field(name=counter, kind=Int(width=1), since_version=since))
            multiply = draw(st.integers(1, 3))
            kind = (Buffer(length_from=counter, multiply=multiply) if shape == "vbuffer"
                    else Array(element=draw(statics), count_from=counter, multiply=multiply))
        elif shape == "exists":
            gate = f"g{i}"
            fields.append(Field(name=gate, kind=Int(width=1)))
            kind, exists = draw(statics), _odd(gate)
        elif shape == "struct":
            kind = Struct(description=draw(layouts(name=f"{name}.s{i}", depth=depth + 1)))
        else:
            kind = Array(element=Struct(description=draw(static_layouts(f"{name}.a{i}"))), count=draw(st.integers(0, 4)))
        fields.append(Field(name=f"f{i}", kind=kind, since_version=since, exists=exists))
    subsections = ()
    if depth < 2:
        subsections = tuple(
            attrs.evolve(draw(layouts(name=f"{name}/sub{j}", depth=depth + 1)), needed=_always)
            for j in range(draw(st.integers(0, 2)))
        )
    return Description(name=name, version=draw(st.integers(1, 3)), fields=tuple(fields), subsections=subsections)


#: values no field kind takes as they are: each path must give the same error for them
BAD = (True, None, "x", 1 << 70, -1, 256, b"", [0], 1.5, Record(version=9))


def _value(draw: st.DrawFn, kind: Kind, bad: Any) -> Any:
    if draw(bad):
        return draw(st.sampled_from(BAD))
    if isinstance(kind, Int):
        return draw(st.integers(kind.minimum, kind.maximum))
    if isinstance(kind, Bool):
        return draw(st.one_of(st.booleans(), st.integers(0, 255)))
    if isinstance(kind, (Buffer, Unused)) and kind.size is not None:
        return draw(st.binary(min_size=kind.size, max_size=kind.size))
    if isinstance(kind, Prefixed):
        return draw(st.binary(max_size=8))
    if isinstance(kind, Array) and kind.count is not None:
        return [_value(draw, kind.element, bad) for _ in range(kind.count)]
    if isinstance(kind, Struct):
        return _record(draw, kind.description, kind.description.version, bad)
    raise AssertionError(kind)


def _record(draw: st.DrawFn, description: Description, version: int, bad: Any) -> Record:
    """Values for every field, those not on the wire at ``version`` included (as ``typed.to_record`` gives)."""
    record = Record(version=version)
    for field in description.fields:
        kind = field.kind
        if isinstance(kind, Buffer) and kind.length_from:
            n = draw(st.integers(0, 3))
            record.fields[kind.length_from] = n
            record.fields[field.name] = draw(st.binary(min_size=n * kind.multiply, max_size=n * kind.multiply))
        elif isinstance(kind, Array) and kind.count_from:
            n = draw(st.integers(0, 3))
            record.fields[kind.count_from] = n
            record.fields[field.name] = [_value(draw, kind.element, bad) for _ in range(n * kind.multiply)]
        elif field.exists is not None and field.name.startswith("g"):
            record.fields[field.name] = draw(st.integers(0, 3))
        elif field.name not in record.fields:
            record.fields[field.name] = _value(draw, kind, bad)
        if not field.name.startswith("g") and draw(bad):
            del record.fields[field.name]  # an exists test's gate stays: the test is the caller's code
    for sub in description.subsections:
        if draw(st.booleans()):
            record.subsections[sub.name] = _record(draw, sub, draw(st.integers(sub.minimum_version, sub.version)), bad)
    return record


@st.composite
def cases(draw: st.DrawFn) -> tuple[Description, Record, Limits]:
    description = draw(layouts())
    version = draw(st.integers(description.minimum_version, description.version))
    bad = st.integers(0, 40).map(lambda n: n == 0) if draw(st.booleans()) else st.just(False)
    limits = attrs.evolve(DEFAULT_LIMITS, max_depth=draw(st.sampled_from([1, 2, 64])))
    return description, _record(draw, description, version, bad), limits


def _error(error: Exception) -> tuple[Any, ...]:
    if isinstance(error, DecodeError):
        return (type(error).__name__, error.offset, error.path, error.section, error.version, error.message)
    assert isinstance(error, EncodeError)
    return (type(error).__name__, error.path, error.message)


def _encoded(description: Description, record: Record, limits: Limits) -> Any:
    try:
        return encode(description, record, limits=limits)
    except EncodeError as error:
        return _error(error)


def _decoded(description: Description, data: bytes, version: int, limits: Limits) -> Any:
    reader = ByteReader(data)
    try:
        return decode(description, reader, version, limits=limits), reader.offset
    except DecodeError as error:
        return _error(error)


def _reference(function: Any, *args: Any) -> Any:
    with interpreted():
        return function(*args)


@settings(max_examples=400, deadline=None)
@given(cases(), st.data())
def test_the_plan_and_the_interpreter_agree(case: tuple[Description, Record, Limits], data: st.DataObject) -> None:
    description, record, limits = case
    wire = _encoded(description, record, limits)
    assert _reference(_encoded, description, record, limits) == wire
    if not isinstance(wire, bytes):
        return
    inputs = {wire, wire + data.draw(st.binary(max_size=8))}
    inputs |= {wire[:cut] for cut in data.draw(st.lists(st.integers(0, max(0, len(wire) - 1)), max_size=10))}
    for at, byte in data.draw(st.lists(st.tuples(st.integers(0, max(0, len(wire) - 1)), st.integers(0, 255)), max_size=3)):
        if wire:
            inputs.add(wire[:at] + bytes((byte,)) + wire[at + 1 :])
    for candidate in sorted(inputs):
        decoded = _decoded(description, candidate, record.version, limits)
        assert _reference(_decoded, description, candidate, record.version, limits) == decoded


def test_the_interpreter_gates_since_version_itself() -> None:
    gated = Description(name="g", version=3, minimum_version=1, fields=(
        Field(name="a", kind=Int(width=2)),
        Field(name="b", kind=Int(width=4), since_version=3),
        Field(name="c", kind=Array(element=Int(width=1), count=2), since_version=2),
    ))
    full = Record(version=3, fields={"a": 1, "b": 2, "c": [3, 4]})
    for version, wire, fields in ((1, "0001", {"a": 1}), (2, "00010304", {"a": 1, "c": [3, 4]}),
                                  (3, "00010000000203" "04", {"a": 1, "b": 2, "c": [3, 4]})):
        for run in (lambda f, *a, **k: f(*a, **k), lambda f, *a, **k: _reference(lambda: f(*a, **k))):
            assert run(encode, gated, attrs.evolve(full, version=version)).hex() == wire
            assert run(decode, gated, ByteReader(bytes.fromhex(wire)), version) == Record(version=version, fields=fields)


REAL_STREAMS = ["pc-7.2-virtio-all-legacy.mig", "q35-7.2-virtio-net-modern.mig", "pc-2.2-virtio-all.mig",
                "pseries-7.2-virtio-all-legacy.mig", "virt-7.2-virtio-mmio-all.mig", "q35-7.2-virtio-gpu-modern.mig"]


@pytest.mark.parametrize("name", REAL_STREAMS)
def test_the_plan_and_the_interpreter_agree_on_real_sections(name: str) -> None:
    with open_stream(STREAMS / name) as source:
        sections = [r for r in StreamReader(source, descriptions=DEFAULT_REGISTRY) if isinstance(r, DeviceState)]
    assert sections
    for section in sections:
        wire = encode(section.description, section.record)
        assert _reference(encode, section.description, section.record) == wire
        assert _reference(decode, section.description, ByteReader(wire), section.version) == section.record
        assert decode(section.description, ByteReader(wire), section.version) == section.record


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
