"""Descriptions built from QEMU's vmdesc JSON trailer, and back.

QEMU appends to a stream a JSON description of every device section it wrote
(``vmstate_save`` with a JSON writer).  It is class-level data bound to this
very stream: each field's ``size`` is the bytes actually written and only the
subsections that were sent are listed.  Turning an entry into a
``Description`` lets the one engine decode any section generically.

The trailer comes from the input, so it is validated like any other input:
shapes, sizes and counts are checked and errors name the JSON path.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

from .description import Array, Bool, Buffer, Description, Field, Int, Items, Kind, Struct, Unused
from .errors import LimitExceededError, MalformedError
from .limits import DEFAULT_LIMITS, Limits

__all__ = ["parse_vmdesc", "check_name", "description_from_vmdesc", "vmdesc_body_size", "vmdesc_from_description", "OLD_STYLE_VERSION"]

#: version window of a description built for a ``save_state`` section: its vmdesc names no version
OLD_STYLE_VERSION = 0xFFFFFFFF

_INT_TYPES: dict[str, tuple[int, bool]] = {
    "uint8": (1, False),
    "uint16": (2, False),
    "uint32": (4, False),
    "uint64": (8, False),
    "int8": (1, True),
    "int16": (2, True),
    "int32": (4, True),
    "int64": (8, True),
    # less-or-equal on load, and big-endian like the rest (vmstate/kinds.py INT32_LE)
    "int32 le": (4, True),
    "int32 equal": (4, True),
    "uint32 equal": (4, False),
    "uint16 equal": (2, False),
    "uint8 equal": (1, False),
    "int64 equal": (8, False),
    "timer": (8, True),
}


_STRING = re.compile(rb'"[^"]*"')
#: brackets as +1 / -1 (signed bytes), everything else deleted
_DEPTH_STEPS = bytes.maketrans(b"[]{}", b"\x01\xff\x01\xff")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def parse_vmdesc(raw: bytes, *, limits: Limits = DEFAULT_LIMITS, offset: int | None = None) -> dict[str, Any]:
    """Parse a vmdesc JSON trailer into a dict; ``offset`` is where ``raw`` starts in the stream.

    Size, number of values and nesting depth are checked on the bytes before
    anything is parsed, so a hostile trailer costs neither a ``RecursionError``
    nor memory (parsed JSON takes up to ~25 times its size).
    """
    value = load_bounded_json(raw, what="vmdesc", offset=offset,
                              limits=(("max_vmdesc", limits.max_vmdesc), ("max_vmdesc_items", limits.max_vmdesc_items),
                                      ("max_vmdesc_depth", limits.max_vmdesc_depth)))
    if not isinstance(value, dict):
        raise MalformedError("vmdesc trailer is not a JSON object", offset=offset)
    return value


def load_bounded_json(raw: bytes, *, what: str, limits: tuple[tuple[str, int], tuple[str, int], tuple[str, int]],
                      offset: int | None = None) -> Any:
    """Parse untrusted JSON whose size, value count and nesting depth are checked before parsing.

    ``limits``: (name, value) of the byte, value-count and depth limits, named in the errors.
    """
    (bytes_name, max_bytes), (items_name, max_items), (depth_name, max_depth) = limits
    if len(raw) > max_bytes:
        raise LimitExceededError(f"{what} of {len(raw)} bytes exceeds limits.{bytes_name} = {max_bytes}", offset=offset)
    # Outside strings JSON has no quote or backslash: drop escaped backslashes
    # and quotes (left to right, as a JSON parser pairs them), then the strings.
    bare = _STRING.sub(b'""', raw.replace(b"\\\\", b"").replace(b'\\"', b""))
    items = 1 + bare.count(b",") + bare.count(b"[") + bare.count(b"{")
    if items > max_items:
        raise LimitExceededError(
            f"{what} of about {items} JSON values exceeds limits.{items_name} = {max_items}", offset=offset
        )
    depth = max(accumulate(memoryview(bare.translate(_DEPTH_STEPS, _NOT_BRACKETS)).cast("b")), default=0)
    del bare
    if depth > max_depth:
        raise LimitExceededError(
            f"{what} JSON nests {depth} deep, deeper than limits.{depth_name} = {max_depth}", offset=offset
        )
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as error:
        at = None if offset is None else offset + error.start
        raise MalformedError(f"{what} is not UTF-8: {error.reason}", offset=at) from None
    except ValueError as error:
        at = None if offset is None else offset + len(raw.decode("utf-8")[: getattr(error, "pos", 0)].encode())
        raise MalformedError(f"{what} is not JSON: {getattr(error, 'msg', error)}", offset=at) from None


def _bad(message: str, where: str) -> MalformedError:
    return MalformedError(f"vmdesc {where}: {message}")


def _get(obj: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise _bad(f"missing {key!r}", where)
    value = obj[key]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is int:
        raise _bad(f"{key!r} has the wrong type", where)
    if isinstance(value, str):
        check_name(value, f"{where}.{key}")
    return value


def check_name(value: str, where: str) -> None:
    """Refuse a string that cannot be written as UTF-8 (JSON's ``\\ud800`` escapes make lone surrogates)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise _bad(f"{value[error.start]!r} at position {error.start} is a lone surrogate", where) from None


def _count(obj: dict[str, Any], key: str, limit: int, limit_name: str, where: str) -> int:
    value = _get(obj, key, int, where)
    if value < 0:
        raise _bad(f"{key!r} is negative", where)
    if value > limit:
        raise LimitExceededError(f"vmdesc {where}: {key} {value} exceeds limits.{limit_name} = {limit}")
    return value


def _element_kind(entry: dict[str, Any], where: str, limits: Limits, depth: int) -> Kind:
    type_name = _get(entry, "type", str, where)
    size = _count(entry, "size", limits.max_section_body, "max_section_body", where)
    if type_name == "struct":
        nested = description_from_vmdesc(_get(entry, "struct", dict, where), limits=limits, _where=f"{where}.struct", _depth=depth + 1)
        return Struct(description=nested, version=nested.version)
    if type_name == "tmp" and "fields" in entry:
        nested = description_from_vmdesc(entry, limits=limits, _where=where, _depth=depth + 1)
        return Struct(description=nested, version=nested.version, type_name="tmp")
    if type_name in _INT_TYPES and _INT_TYPES[type_name][0] == size:
        width, signed = _INT_TYPES[type_name]
        return Int(width=width, signed=signed, type_name=type_name)
    if type_name == "bool" and size == 1:
        return Bool()
    if type_name == "unused_buffer":
        return Unused(size=size)
    return Buffer(size=size, type_name=type_name)


def _last_element(entry: Any, previous: dict[str, Any]) -> bool:
    """Whether ``entry`` is the unnumbered last element of the array ``previous`` belongs to."""
    if not isinstance(entry, dict) or "index" in entry or entry.get("name") != previous.get("name"):
        return False
    same = ("type", "size", "array_len")
    if any(entry.get(key) != previous.get(key) for key in same):
        return False
    struct, before = entry.get("struct"), previous.get("struct")
    return not isinstance(struct, dict) or not isinstance(before, dict) or struct.get("vmsd_name") == before.get("vmsd_name")


def _fields(entries: list[Any], where: str, limits: Limits, depth: int) -> tuple[Field, ...]:
    fields: list[Field] = []
    used: set[str] = set()
    i = 0
    while i < len(entries):
        entry = entries[i]
        here = f"{where}.fields[{i}]"
        name = _get(entry, "name", str, here)
        if "index" in entry:
            # An array QEMU expanded element by element: gather the run.
            elements: list[Kind] = []
            while i < len(entries) and isinstance(entries[i], dict) and entries[i].get("name") == name and "index" in entries[i]:
                if entries[i]["index"] != len(elements):
                    raise _bad(f"index {entries[i]['index']!r} out of order", f"{where}.fields[{i}]")
                elements.append(_element_kind(entries[i], f"{where}.fields[{i}]", limits, depth))
                i += 1
            # QEMU 10.0 writes no "index" on an expanded array's last element (seen in every
            # 10.0 stream: ide's bmdma is index 0 then no index); 7.2 numbered them all.
            if i < len(entries) and _last_element(entries[i], entries[i - 1]):
                elements.append(_element_kind(entries[i], f"{where}.fields[{i}]", limits, depth))
                i += 1
            kind: Kind = Items(elements=tuple(elements))
        else:
            kind = _element_kind(entry, here, limits, depth)
            if "array_len" in entry:
                count = _count(entry, "array_len", limits.max_array_count, "max_array_count", here)
                kind = Array(element=kind, count=count)
            i += 1
        unique = name
        n = 1
        while unique in used:
            n += 1
            unique = f"{name}#{n}"
        used.add(unique)
        fields.append(Field(name=unique, kind=kind))
    return tuple(fields)


def _always(_state: Any) -> bool:
    return True


def description_from_vmdesc(
    vmsd: dict[str, Any], *, limits: Limits = DEFAULT_LIMITS, _where: str = "", _depth: int = 0
) -> Description:
    """Build a ``Description`` from one vmdesc device or vmsd object."""
    where = _where or "device"
    if _depth > limits.max_depth:
        raise LimitExceededError(f"vmdesc {where}: nesting deeper than limits.max_depth = {limits.max_depth}")
    if not _depth and isinstance(vmsd, dict) and "vmsd_name" not in vmsd:
        return _old_style(vmsd, limits, where)
    name = _get(vmsd, "vmsd_name", str, where)
    version = _count(vmsd, "version", 1 << 32, "max_version", where)
    fields = _fields(_get(vmsd, "fields", list, where), where, limits, _depth)
    raw_subsections = vmsd.get("subsections", [])
    if not isinstance(raw_subsections, list):
        raise _bad("'subsections' is not a list", where)
    subsections = tuple(
        description_from_vmdesc(sub, limits=limits, _where=f"{where}.subsections[{i}]", _depth=_depth + 1)
        for i, sub in enumerate(raw_subsections)
    )
    if not name or len(name.encode()) > 255:
        raise _bad(f"vmsd_name {name!r} is not 1-255 bytes", where)
    for sub in subsections:
        if not sub.name.startswith(name):
            raise _bad(f"subsection {sub.name!r} does not start with {name!r}", where)
    return Description(
        name=name,
        version=version,
        minimum_version=0,
        fields=fields,
        subsections=subsections,
        needed=_always if _depth else None,
    )


def _old_style(entry: dict[str, Any], limits: Limits, where: str) -> Description:
    """A section saved by a ``save_state`` handler (e.g. ``slirp``): one opaque ``data`` buffer.

    QEMU describes such a section by its name and size only: no vmsd name, no
    version, a single ``data`` field of type ``buffer``.
    """
    name = _get(entry, "name", str, where)
    fields = _get(entry, "fields", list, where)
    if len(fields) != 1 or not isinstance(fields[0], dict) or fields[0].get("name") != "data":
        raise _bad("no 'vmsd_name', and not a save_state section (one 'data' field)", where)
    size = _count(fields[0], "size", limits.max_section_body, "max_section_body", f"{where}.fields[0]")
    return Description(
        name=name,
        version=OLD_STYLE_VERSION,
        minimum_version=0,
        fields=(Field(name="data", kind=Buffer(size=size, type_name="buffer")),),
    )


def _kind_size(kind: Kind) -> int:
    if isinstance(kind, Int):
        return kind.width
    if isinstance(kind, Bool):
        return 1
    if isinstance(kind, (Buffer, Unused)):
        assert kind.size is not None
        return kind.size
    if isinstance(kind, Array):
        assert kind.count is not None
        return kind.count * _kind_size(kind.element)
    if isinstance(kind, Items):
        return sum(_kind_size(e) for e in kind.elements)
    if isinstance(kind, Struct):
        return vmdesc_body_size(kind.description)
    raise _bad(f"kind {kind!r} has no static size", "size")


def vmdesc_body_size(description: Description) -> int:
    """Bytes a vmdesc-built description occupies on the wire, subsections included."""
    total = sum(_kind_size(f.kind) for f in description.fields)
    for sub in description.subsections:
        total += 2 + len(sub.name.encode()) + 4 + vmdesc_body_size(sub)
    return total


def vmdesc_from_description(description: Description) -> dict[str, Any]:
    """Render a statically sized description in vmdesc's JSON shape."""
    fields: list[dict[str, Any]] = []
    for f in description.fields:
        kind = f.kind
        if isinstance(kind, Items):
            for index, element in enumerate(kind.elements):
                fields.append(_vmdesc_field(f.name, element, index=index))
        elif isinstance(kind, Array):
            entry = _vmdesc_field(f.name, kind.element)
            entry["array_len"] = kind.count
            fields.append(entry)
        else:
            fields.append(_vmdesc_field(f.name, kind))
    if description.version == OLD_STYLE_VERSION:
        return {"fields": fields}  # a save_state section: QEMU names no vmsd and no version
    out: dict[str, Any] = {"vmsd_name": description.name, "version": description.version, "fields": fields}
    if description.subsections:
        out["subsections"] = [vmdesc_from_description(s) for s in description.subsections]
    return out


def _vmdesc_field(name: str, kind: Kind, *, index: int | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name.split("#")[0]}
    if index is not None:
        entry["index"] = index
    entry["type"] = kind.type_name
    if isinstance(kind, Struct):
        nested = vmdesc_from_description(kind.description)
        if kind.type_name == "tmp":
            entry.update(nested)
        else:
            entry["struct"] = nested
    entry["size"] = _kind_size(kind)
    return entry
