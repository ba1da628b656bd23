"""Hypothesis strategies: arbitrary descriptions and records that fit them (engine, compiled plan, codecs)."""

from __future__ import annotations

from typing import Any

import attrs
from hypothesis import strategies as st

from vmstate import Description, Field, Record
from vmstate.description import Array, Bool, Buffer, Int, Kind, Prefixed, Struct, Unused

__all__ = ["described_records", "descriptions", "records"]


def _always(_state: Any) -> bool:
    return True


ints = st.builds(Int, width=st.sampled_from([1, 2, 4, 8]), signed=st.booleans())
leaf_kinds = st.one_of(
    ints,
    st.just(Bool()),
    st.builds(Buffer, size=st.integers(0, 6)),
    st.builds(Prefixed, prefix_width=st.sampled_from([1, 2, 4])),
    st.builds(Unused, size=st.integers(0, 3)),
)


@st.composite
def descriptions(draw: st.DrawFn, name: str = "d", depth: int = 0) -> Description:
    fields: list[Field] = []
    for i in range(draw(st.integers(0, 5))):
        shape = draw(st.sampled_from(["leaf", "leaf", "array", "varray", "vbuffer", "struct"] if depth < 2 else ["leaf", "vbuffer"]))
        since = draw(st.sampled_from([0, 0, 1, 2]))
        if shape == "leaf":
            kind: Kind = draw(leaf_kinds)
        elif shape == "array":
            kind = Array(element=draw(leaf_kinds), count=draw(st.integers(0, 3)))
        elif shape == "struct":
            kind = Struct(description=draw(descriptions(name=f"{name}.s{i}", depth=depth + 1)))
        else:
            counter = f"n{i}"
            fields.append(Field(name=counter, kind=Int(width=1), since_version=since))
            multiply = draw(st.integers(1, 3))
            if shape == "vbuffer":
                kind = Buffer(length_from=counter, multiply=multiply)
            else:
                kind = Array(element=draw(leaf_kinds), count_from=counter, multiply=multiply)
        fields.append(Field(name=f"f{i}", kind=kind, since_version=since))
    subsections = ()
    if depth < 2:
        subsections = tuple(
            attrs.evolve(draw(descriptions(name=f"{name}/sub{j}", depth=depth + 1)), needed=_always)
            for j in range(draw(st.integers(0, 2)))
        )
    version = draw(st.integers(2, 4))
    return Description(name=name, version=version, minimum_version=0, fields=tuple(fields), subsections=subsections)


def _value(draw: st.DrawFn, kind: Kind) -> Any:
    if isinstance(kind, Int):
        return draw(st.integers(kind.minimum, kind.maximum))
    if isinstance(kind, Bool):
        return draw(st.booleans())
    if isinstance(kind, (Buffer, Unused)) and kind.size is not None:
        return draw(st.binary(min_size=kind.size, max_size=kind.size))
    if isinstance(kind, Prefixed):
        return draw(st.binary(max_size=8))
    if isinstance(kind, Array) and kind.count is not None:
        return [_value(draw, kind.element) for _ in range(kind.count)]
    if isinstance(kind, Struct):
        return draw(records(kind.description, kind.description.version))
    raise AssertionError(kind)


@st.composite
def records(draw: st.DrawFn, description: Description, version: int) -> Record:
    record = Record(version=version)
    for field in description.fields:
        if field.since_version > version:
            continue
        kind = field.kind
        if isinstance(kind, Buffer) and kind.length_from:
            n = draw(st.integers(0, 4))
            record.fields[kind.length_from] = n
            record.fields[field.name] = draw(st.binary(min_size=n * kind.multiply, max_size=n * kind.multiply))
        elif isinstance(kind, Array) and kind.count_from:
            n = draw(st.integers(0, 3))
            record.fields[kind.count_from] = n
            record.fields[field.name] = [_value(draw, kind.element) for _ in range(n * kind.multiply)]
        elif field.name not in record.fields:
            record.fields[field.name] = _value(draw, kind)
    for sub in description.subsections:
        if draw(st.booleans()):
            record.subsections[sub.name] = draw(records(sub, draw(st.integers(sub.minimum_version, sub.version))))
    return record


@st.composite
def described_records(draw: st.DrawFn) -> tuple[Description, Record]:
    description = draw(descriptions())
    version = draw(st.integers(description.minimum_version, description.version))
    return description, draw(records(description, version))
