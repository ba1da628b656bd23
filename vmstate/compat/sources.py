"""Read a schema file (ours or QEMU's ``-dump-vmstate``) into the common model.

The format is recognised from the content: our export carries
``"format": "vmstate-forge-schema"`` (a single ``vmstate describe NAME``
output is accepted too); QEMU's dump is an object of device types, each with
``Name``, ``version_id``, ``minimum_version_id`` and ``Description``, plus
``vmschkmachine`` naming the machine type.  Files are input: every shape is
checked and a mismatch is a ``SchemaFormatError`` naming the JSON path.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs

from .errors import SchemaFormatError
from .export import SCHEMA_FORMAT
from .model import FieldNode, SchemaSet, VmsdNode, present

__all__ = ["load_schema", "ours_from_json", "qemu_from_json", "schema_from_json"]


def _get(obj: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise SchemaFormatError(f"{where}: missing {key!r}")
    value = obj[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise SchemaFormatError(f"{where}: {key!r} has the wrong type")
    return value


def _is_description(value: Any) -> bool:
    return isinstance(value, dict) and {"name", "version", "minimum_version", "fields"} <= value.keys()


# ------------------------------------------------------------------ ours


def _static_size(node: VmsdNode, version: int) -> int | None:
    if node.subsections:
        return None
    total = 0
    for field in node.fields:
        state = present(field, version)
        if state == "depends" or (state == "yes" and field.size is None):
            return None
        if state == "yes" and field.size is not None:
            total += field.size
    return total


def _custom(layout: Any, where: str) -> dict[str, Any]:
    parts: list[tuple[str, VmsdNode]] = []
    facts: list[tuple[str, str]] = []

    def walk(value: Any, key: str) -> None:
        if _is_description(value):
            parts.append((key, _vmsd_ours(value, f"{where}.{key}")))
        elif isinstance(value, dict):
            for sub, item in value.items():
                walk(item, f"{key}.{sub}" if key else sub)
        elif isinstance(value, list) and any(_is_description(v) for v in value):
            for index, item in enumerate(value):
                walk(item, f"{key}[{index}]")
        else:
            facts.append((key, json.dumps(value, sort_keys=True)))

    walk(layout, "")
    return {"parts": tuple(parts), "layout": tuple(facts), "opaque": layout is None}


def _kind_ours(data: dict[str, Any], where: str) -> dict[str, Any]:
    kind = _get(data, "kind", str, where)
    if kind == "int":
        return {"type": data.get("type", ""), "size": _get(data, "width", int, where)}
    if kind == "bool":
        return {"type": "bool", "size": 1}
    if kind == "buffer":
        size = data.get("size")
        rule = "" if size is not None else f"length_from={data.get('length_from')}*{data.get('multiply', 1)}"
        return {"type": data.get("type", "buffer"), "size": size, "size_rule": rule}
    if kind == "prefixed":
        return {"type": data.get("type", "prefixed_buffer"), "size_rule": f"prefixed by {data.get('prefix_width')} bytes"}
    if kind == "unused":
        return {"type": "unused_buffer", "size": _get(data, "size", int, where), "unused": True}
    if kind == "array":
        element = _kind_ours(_get(data, "element", dict, where), f"{where}.element")
        count = data.get("count")
        each = element.get("size")
        rule = f"count={count}" if count is not None else \
            f"count_from={data.get('count_from')}*{data.get('multiply', 1)}{data.get('adjust', 0):+d}"
        size = count * each if count is not None and each is not None else None
        return {**element, "size": size, "element_size": each, "size_rule": rule}
    if kind == "items":
        elements = [_kind_ours(e, f"{where}.elements[{i}]") for i, e in enumerate(_get(data, "elements", list, where))]
        sizes: list[int | None] = [e.get("size") for e in elements]
        total = None if any(s is None for s in sizes) else sum(s for s in sizes if s is not None)
        return {"type": elements[0].get("type", "items") if elements else "items", "size": total}
    if kind == "struct":
        node = _vmsd_ours(_get(data, "description", dict, where), f"{where}.description")
        version = data.get("version")
        return {"type": data.get("type", "struct"), "struct": node, "struct_version": version,
                "size": _static_size(node, node.version if version is None else version)}
    if kind == "custom":
        return {"type": data.get("type", ""), **_custom(data.get("layout"), f"{where}.layout")}
    raise SchemaFormatError(f"{where}: unknown field kind {kind!r}")


def _field_ours(data: Any, where: str) -> FieldNode:
    name = _get(data, "name", str, where)
    gate = data.get("exists")
    versions = data.get("exists_versions")
    return FieldNode(
        name=name,
        since_version=int(data.get("since_version", 0)),
        gate=gate if isinstance(gate, str) else None,
        gate_versions=frozenset(versions) if isinstance(versions, list) and gate else None,
        **_kind_ours(data, where),
    )


def _vmsd_ours(data: Any, where: str) -> VmsdNode:
    name = _get(data, "name", str, where)
    return VmsdNode(
        name=name,
        version=_get(data, "version", int, where),
        minimum_version=_get(data, "minimum_version", int, where),
        fields=tuple(_field_ours(f, f"{where}.fields[{i}]") for i, f in enumerate(_get(data, "fields", list, where))),
        subsections=tuple(
            _vmsd_ours(s, f"{where}.subsections[{i}]") for i, s in enumerate(data.get("subsections", []))
        ),
        needed=data.get("needed") if isinstance(data.get("needed"), str) else None,
    )


def ours_from_json(data: dict[str, Any], label: str) -> SchemaSet:
    """Our schema export (or one ``vmstate describe NAME`` output) as a ``SchemaSet``."""
    if _is_description(data):
        sections = {data["name"]: _vmsd_ours(data, data["name"])}
    else:
        raw = _get(data, "sections", dict, "schema")
        sections = {key: _vmsd_ours(value, key) for key, value in raw.items()}
    return SchemaSet(format="vmstate-forge", label=label, sizes="wire", sections=sections)


# ------------------------------------------------------------------ QEMU


def _field_qemu(data: Any, where: str) -> FieldNode:
    name = _get(data, "field", str, where)
    size = _get(data, "size", int, where)
    nested = data.get("Description")
    struct = _vmsd_qemu(nested, f"{where}.Description") if nested is not None else None
    return FieldNode(
        name=name,
        size=size,
        element_size=size,
        since_version=_get(data, "version_id", int, where),
        gate="field_exists" if _get(data, "field_exists", bool, where) else None,
        struct=struct,
        # a custom VMStateInfo (QEMU's `virtio`) has size 0 and no description: only its name is known
        opaque=size == 0 and struct is None,
    )


def _unique(fields: list[FieldNode]) -> tuple[FieldNode, ...]:
    """Name repeated fields ``config#2``..., as QEMU lists alternatives under one name."""
    seen: dict[str, int] = {}
    out = []
    for field in fields:
        seen[field.name] = seen.get(field.name, 0) + 1
        if seen[field.name] > 1:
            field = attrs.evolve(field, name=f"{field.name}#{seen[field.name]}")
        out.append(field)
    return tuple(out)


def _vmsd_qemu(data: Any, where: str) -> VmsdNode:
    raw_fields = data.get("Fields", []) if isinstance(data, dict) else []
    return VmsdNode(
        name=_get(data, "name", str, where),
        version=_get(data, "version_id", int, where),
        minimum_version=_get(data, "minimum_version_id", int, where),
        fields=_unique([_field_qemu(f, f"{where}.Fields[{i}]") for i, f in enumerate(raw_fields)]),
        subsections=tuple(
            # QEMU's dump does not say whether a subsection has a `needed` test
            attrs.evolve(_vmsd_qemu(s, f"{where}.Subsections[{i}]"), needed_known=False)
            for i, s in enumerate(data.get("Subsections", []))
        ),
    )


def qemu_from_json(data: dict[str, Any], label: str) -> SchemaSet:
    """QEMU's ``-dump-vmstate`` output as a ``SchemaSet`` keyed by device type name."""
    machine = data.get("vmschkmachine", {}).get("Name") if isinstance(data.get("vmschkmachine"), dict) else None
    sections: dict[str, VmsdNode] = {}
    for key, entry in data.items():
        if key == "vmschkmachine":
            continue
        if isinstance(entry, dict) and "Description" in entry:
            sections[key] = _vmsd_qemu(entry["Description"], key)
    return SchemaSet(
        format="qemu-dump-vmstate",
        label=f"{label} ({machine})" if machine else label,
        sizes="qemu",
        sections=sections,
        machine=machine,
    )


# ------------------------------------------------------------------ files


def schema_from_json(data: Any, label: str) -> SchemaSet:
    """Recognise the format of already parsed JSON and normalize it."""
    if isinstance(data, dict) and (data.get("format") == SCHEMA_FORMAT or _is_description(data)):
        return ours_from_json(data, label)
    if isinstance(data, dict) and (
        "vmschkmachine" in data or any(isinstance(v, dict) and "Description" in v and "Name" in v for v in data.values())
    ):
        return qemu_from_json(data, label)
    raise SchemaFormatError(f"{label}: neither a vmstate-forge schema nor QEMU -dump-vmstate output")


def load_schema(path: str | Path) -> SchemaSet:
    """Read and normalize one schema file."""
    text = Path(path).read_text()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise SchemaFormatError(f"{path}: not JSON: {error}") from None
    return schema_from_json(data, str(path))
