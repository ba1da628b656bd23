"""QEMU's vmdesc lists an array of structs element by element: 7.2 numbers every one, 10.0 all but the last."""

from __future__ import annotations

from typing import Any

from vmstate.description import Items
from vmstate.vmdesc import description_from_vmdesc


def _entry(index: int | None, vmsd: str = "ide_bus") -> dict[str, Any]:
    entry: dict[str, Any] = {"name": "bus", "type": "struct", "size": 2, "struct": {
        "vmsd_name": vmsd, "version": 1, "fields": [{"name": "cmd", "type": "uint8", "size": 1},
                                                     {"name": "unit", "type": "uint8", "size": 1}]}}
    if index is not None:
        entry["index"] = index
    return entry


def _fields(*entries: dict[str, Any]) -> list[tuple[str, int]]:
    description = description_from_vmdesc({"name": "x", "instance_id": 0, "vmsd_name": "x", "version": 1,
                                           "fields": list(entries)})
    return [(f.name, len(f.kind.elements) if isinstance(f.kind, Items) else 0) for f in description.fields]


def test_seven_two_and_ten_give_the_same_array() -> None:
    assert _fields(_entry(0), _entry(1), _entry(2)) == [("bus", 3)]  # QEMU 7.2
    assert _fields(_entry(0), _entry(1), _entry(None)) == [("bus", 3)]  # QEMU 10.0: the last one unnumbered
    assert _fields(_entry(0), _entry(None)) == [("bus", 2)]


def test_an_unnumbered_field_of_another_shape_after_an_array_stays_a_field_of_its_own() -> None:
    assert _fields(_entry(0), _entry(1), _entry(None, vmsd="other")) == [("bus", 2), ("bus#2", 0)]
    assert _fields(_entry(0), _entry(1), _entry(2), _entry(None)) == [("bus", 4)]
