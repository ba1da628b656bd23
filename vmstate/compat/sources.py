"""Read a schema file (ours or QEMU's ``-dump-vmstate``) into the common model.

The format is recognised from the content: our export carries
``"format": "vmstate-forge-schema"`` (a single ``vmstate describe NAME``
output is accepted too); QEMU's dump is an object of device types, each with
``Name``, ``version_id``, ``minimum_version_id`` and ``Description``, plus
``vmschkmachine`` naming the machine type.  Files are input: the JSON is
checked first (``_json_input``: size, depth, integers, text), then every
shape, and a mismatch is a ``SchemaFormatError`` naming the file and the
JSON path.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs

from ..description import LITTLE_ENDIAN_SUFFIX
from ._json_input import check_tree, load_json, text_of
from .errors import SchemaFormatError
from .export import SCHEMA_FORMAT
from .model import FieldNode, SchemaSet, VmsdNode, present

__all__ = ["load_schema", "ours_from_json", "qemu_from_json", "schema_from_json"]


_MISSING = object()
#: QEMU's version_id and minimum_version_id are ints; sections carry them as be32
_VERSION_MAX = 0xFFFFFFFF


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {dict: "a map", list: "a list", str: "text", int: "an integer", bool: "a boolean", type(None): "null"}
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _value_name(value: Any) -> str:
    return _kind_name(type(value)) if type(value) in (dict, list, str, int, bool, type(None)) else "something else"


def _get(obj: Any, key: str, kind: type | tuple[type, ...], where: str, default: Any = _MISSING) -> Any:
    """``obj[key]`` of type ``kind``; with a ``default``, the key may be absent."""
    if not isinstance(obj, dict):
        raise SchemaFormatError(f"{where}: is {_value_name(obj)}, not a map")
    if key not in obj:
        if default is not _MISSING:
            return default
        raise SchemaFormatError(f"{where}: missing {key!r}")
    value = obj[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in kinds):
        raise SchemaFormatError(f"{where}.{key}: is {_value_name(value)}, not {_kind_name(kind)}")
    return value


def _version(obj: Any, key: str, where: str, default: Any = _MISSING) -> int:
    value = _get(obj, key, int, where, default)
    if not 0 <= value <= _VERSION_MAX:
        raise SchemaFormatError(f"{where}.{key}: version {value} is not in 0..{_VERSION_MAX}")
    return int(value)


def _count(obj: Any, key: str, where: str) -> int | None:
    """An optional size or count: null or absent, else a non-negative integer."""
    value = _get(obj, key, (int, type(None)), where, None)
    if value is not None and value < 0:
        raise SchemaFormatError(f"{where}.{key}: {value} is negative")
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
    text = (str, type(None))
    if kind == "int":
        name = _get(data, "type", str, where, "")
        if data.get("byte_order") == "little" and name.endswith(" le"):
            # the auto-name of a little-endian int in files written before it became " little-endian"
            name = name.removesuffix(" le") + LITTLE_ENDIAN_SUFFIX
        return {"type": name, "size": _get(data, "width", int, where)}
    if kind == "bool":
        return {"type": "bool", "size": 1}
    if kind == "buffer":
        size = _count(data, "size", where)
        rule = "" if size is not None else \
            f"length_from={_get(data, 'length_from', text, where, None)}*{_get(data, 'multiply', int, where, 1)}"
        return {"type": _get(data, "type", str, where, "buffer"), "size": size, "size_rule": rule}
    if kind == "prefixed":
        return {"type": _get(data, "type", str, where, "prefixed_buffer"),
                "size_rule": f"prefixed by {_get(data, 'prefix_width', (int, type(None)), where, None)} bytes"}
    if kind == "unused":
        return {"type": "unused_buffer", "size": _count(data, "size", where) or 0, "unused": True}
    if kind == "array":
        element = _kind_ours(_get(data, "element", dict, where), f"{where}.element")
        count = _count(data, "count", where)
        each = element.get("size")
        rule = f"count={count}" if count is not None else \
            f"count_from={_get(data, 'count_from', text, where, None)}*{_get(data, 'multiply', int, where, 1)}" \
            f"{_get(data, 'adjust', int, where, 0):+d}"
        size = count * each if count is not None and each is not None else None
        return {**element, "size": size, "element_size": each, "size_rule": rule}
    if kind == "items":
        elements = [_kind_ours(e, f"{where}.elements[{i}]") for i, e in enumerate(_get(data, "elements", list, where))]
        sizes: list[int | None] = [e.get("size") for e in elements]
        total = None if any(s is None for s in sizes) else sum(s for s in sizes if s is not None)
        return {"type": elements[0].get("type", "items") if elements else "items", "size": total}
    if kind == "struct":
        node = _vmsd_ours(_get(data, "description", dict, where), f"{where}.description")
        version = _version(data, "version", where, None) if data.get("version") is not None else None
        return {"type": _get(data, "type", str, where, "struct"), "struct": node, "struct_version": version,
                "size": _static_size(node, node.version if version is None else version)}
    if kind == "custom":
        return {"type": _get(data, "type", str, where, ""), **_custom(data.get("layout"), f"{where}.layout")}
    raise SchemaFormatError(f"{where}: unknown field kind {text_of(kind)}")


def _field_ours(data: Any, where: str) -> FieldNode:
    name = _get(data, "name", str, where)
    gate = _get(data, "exists", (str, type(None)), where, None)
    versions = _get(data, "exists_versions", (list, type(None)), where, None)
    if versions is not None:
        for index, version in enumerate(versions):
            if isinstance(version, bool) or not isinstance(version, int):
                raise SchemaFormatError(f"{where}.exists_versions[{index}]: is {_value_name(version)}, not an integer")
    return FieldNode(
        name=name,
        since_version=_version(data, "since_version", where, 0),
        gate=gate,
        gate_versions=frozenset(versions) if versions is not None and gate else None,
        **_kind_ours(data, where),
    )


def _vmsd_ours(data: Any, where: str) -> VmsdNode:
    name = _get(data, "name", str, where)
    return VmsdNode(
        name=name,
        version=_version(data, "version", where),
        minimum_version=_version(data, "minimum_version", where),
        fields=tuple(_field_ours(f, f"{where}.fields[{i}]") for i, f in enumerate(_get(data, "fields", list, where))),
        subsections=tuple(
            _vmsd_ours(s, f"{where}.subsections[{i}]") for i, s in enumerate(_get(data, "subsections", list, where, []))
        ),
        needed=data.get("needed") if isinstance(data.get("needed"), str) else None,
    )


def ours_from_json(data: dict[str, Any], label: str) -> SchemaSet:
    """Our schema export (or one ``vmstate describe NAME`` output) as a ``SchemaSet``."""
    if _is_description(data):
        sections = {data["name"]: _vmsd_ours(data, text_of(_get(data, "name", str, "(top level)")))}
    else:
        raw = _get(data, "sections", dict, "(top level)")
        sections = {key: _vmsd_ours(value, f"sections.{text_of(key)}") for key, value in raw.items()}
    return SchemaSet(format="vmstate-forge", label=label, sizes="wire", sections=sections)


# ------------------------------------------------------------------ QEMU


def _field_qemu(data: Any, where: str) -> FieldNode:
    name = _get(data, "field", str, where)
    size = _count(data, "size", where)
    if size is None:
        raise SchemaFormatError(f"{where}: missing 'size'")
    nested = _get(data, "Description", (dict, type(None)), where, None)
    struct = _vmsd_qemu(nested, f"{where}.Description") if nested is not None else None
    return FieldNode(
        name=name,
        size=size,
        element_size=size,
        since_version=_version(data, "version_id", where),
        gate="field_exists" if _get(data, "field_exists", bool, where) else None,
        struct=struct,
        # VMSTATE_UNUSED and VMSTATE_UNUSED_BUFFER name their padding "unused" (include/migration/vmstate.h)
        unused=name == "unused" and struct is None,
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
    raw_fields = _get(data, "Fields", list, where, [])
    return VmsdNode(
        name=_get(data, "name", str, where),
        version=_version(data, "version_id", where),
        minimum_version=_version(data, "minimum_version_id", where),
        fields=_unique([_field_qemu(f, f"{where}.Fields[{i}]") for i, f in enumerate(raw_fields)]),
        subsections=tuple(
            # QEMU's dump does not say whether a subsection has a `needed` test
            attrs.evolve(_vmsd_qemu(s, f"{where}.Subsections[{i}]"), needed_known=False)
            for i, s in enumerate(_get(data, "Subsections", list, where, []))
        ),
    )


def qemu_from_json(data: dict[str, Any], label: str) -> SchemaSet:
    """QEMU's ``-dump-vmstate`` output as a ``SchemaSet`` keyed by device type name."""
    machine = data.get("vmschkmachine", {}).get("Name") if isinstance(data.get("vmschkmachine"), dict) else None
    if not isinstance(machine, (str, type(None))):
        raise SchemaFormatError(f"vmschkmachine.Name: is {_value_name(machine)}, not text")
    sections: dict[str, VmsdNode] = {}
    for key, entry in data.items():
        if key == "vmschkmachine":
            continue
        if isinstance(entry, dict) and "Description" in entry:
            sections[key] = _vmsd_qemu(entry["Description"], f"{text_of(key)}.Description")
    return SchemaSet(
        format="qemu-dump-vmstate",
        label=f"{label} ({machine})" if machine else label,
        sizes="qemu",
        sections=sections,
        machine=machine,
    )


# ------------------------------------------------------------------ files


def schema_from_json(data: Any, label: str, *, checked: bool = False) -> SchemaSet:
    """Recognise the format of already parsed JSON and normalize it; errors name ``label`` and the JSON path."""
    if not checked:
        check_tree(data, label)
    try:
        if isinstance(data, dict) and (data.get("format") == SCHEMA_FORMAT or _is_description(data)):
            return ours_from_json(data, label)
        if isinstance(data, dict) and (
            "vmschkmachine" in data or any(isinstance(v, dict) and "Description" in v and "Name" in v for v in data.values())
        ):
            return qemu_from_json(data, label)
    except SchemaFormatError as error:
        raise SchemaFormatError(f"{label}: {error}") from None
    raise SchemaFormatError(f"{label}: neither a vmstate-forge schema nor QEMU -dump-vmstate output")


def load_schema(path: str | Path) -> SchemaSet:
    """Read and normalize one schema file (``_json_input`` bounds what is read)."""
    return schema_from_json(load_json(path), str(path), checked=True)
