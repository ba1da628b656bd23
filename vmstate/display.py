"""How text output shows a decoded value: named integers, text buffers.

Field kinds carry display hints (``Int.names``, ``Buffer.text``); decoded
value trees do not carry their kinds.  ``DisplayTable`` maps (name of the
description a field belongs to, field name) to the field's kind, so a
renderer that knows which record it is in (a section's vmsd, a subsection
by its name) can show ``device_endian: little (1)``.  Fields inside a
``Struct`` are not looked up: their records carry no description name.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from .description import Array, Buffer, Description, Int, Items, Kind, Struct
from .text import printable

__all__ = ["DisplayTable", "display_table", "shown", "path_step"]

DisplayTable = Mapping[tuple[str, str], Int | Buffer]


def _nested(kind: Kind) -> Iterable[Description]:
    if isinstance(kind, Struct):
        yield kind.description
    elif isinstance(kind, Array):
        yield from _nested(kind.element)
    elif isinstance(kind, Items):
        for element in kind.elements:
            yield from _nested(element)


def display_table(descriptions: Iterable[Description]) -> dict[tuple[str, str], Int | Buffer]:
    """Every field of ``descriptions`` (subsections and structs included) with a display hint."""
    table: dict[tuple[str, str], Int | Buffer] = {}
    pending, seen = list(descriptions), set()
    while pending:
        description = pending.pop()
        if id(description) in seen:
            continue
        seen.add(id(description))
        for field in description.fields:
            if (isinstance(field.kind, Int) and field.kind.names) or (isinstance(field.kind, Buffer) and field.kind.text):
                table[(description.name, field.name)] = field.kind
            pending.extend(_nested(field.kind))
        pending.extend(description.subsections)
    return table


def shown(value: Any, kind: Int | Buffer | None) -> str | None:
    """``value`` as ``kind`` says to show it, or None if the kind says nothing about it."""
    if isinstance(kind, Int) and isinstance(value, int) and not isinstance(value, bool):
        name = dict(kind.names).get(value)
        return f"{name} ({value})" if name is not None else None
    if isinstance(kind, Buffer) and kind.text and isinstance(value, (bytes, bytearray)):
        text = bytes(value).rstrip(b"\0")
        if b"\0" in text:
            return None
        return '"' + printable(text.decode("latin-1")) + '"'
    return None


def path_step(name: str) -> str:
    """A field name as a step of a text path; quoted if it would read as several steps.

    QEMU's vmdesc names some fields after C expressions (i8254's
    ``channels[0].next_transition_time``, hw/timer/i8254_common.c): quoted,
    it cannot be taken for ``next_transition_time`` inside ``channels[0]``.
    """
    if any(c in name for c in '.[]"'):
        return '"' + name.replace('"', '\\"') + '"'
    return name
