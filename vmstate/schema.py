"""Export descriptions as JSON: the same tables that drive the engine, as data.

Every kind, version gate, count rule and subsection is written out; test
functions (``exists``, ``needed``) are code, so they appear by name.  A
custom field (QEMU's ``VMStateInfo`` with its own get/put) contributes what
its codec's ``describe()`` says.
"""

from __future__ import annotations

from typing import Any, Callable

from .description import Array, Bool, Buffer, Custom, Description, Field, Int, Items, Kind, Prefixed, Struct, Unused
from .errors import DescriptionError

__all__ = ["description_to_json", "kind_to_json", "SCHEMA_VERSION"]

#: bump when the JSON shape changes
SCHEMA_VERSION = 1


def _callable_name(function: Callable[..., Any] | None) -> str | None:
    if function is None:
        return None
    return f"{getattr(function, '__module__', '?')}.{getattr(function, '__qualname__', repr(function))}"


def kind_to_json(kind: Kind) -> dict[str, Any]:
    """One field kind as JSON."""
    if isinstance(kind, Int):
        return {"kind": "int", "type": kind.type_name, "width": kind.width, "signed": kind.signed,
                "byte_order": "little" if kind.little else "big"}
    if isinstance(kind, Bool):
        return {"kind": "bool", "type": kind.type_name}
    if isinstance(kind, Buffer):
        out: dict[str, Any] = {"kind": "buffer", "type": kind.type_name}
        if kind.size is not None:
            out["size"] = kind.size
        else:
            out.update(length_from=kind.length_from, multiply=kind.multiply)
        return out
    if isinstance(kind, Prefixed):
        return {"kind": "prefixed", "type": kind.type_name, "prefix_width": kind.prefix_width}
    if isinstance(kind, Unused):
        return {"kind": "unused", "size": kind.size}
    if isinstance(kind, Array):
        out = {"kind": "array", "element": kind_to_json(kind.element)}
        if kind.count is not None:
            out["count"] = kind.count
        else:
            out.update(count_from=kind.count_from, multiply=kind.multiply, adjust=kind.adjust)
        return out
    if isinstance(kind, Items):
        return {"kind": "items", "elements": [kind_to_json(e) for e in kind.elements]}
    if isinstance(kind, Struct):
        out = {"kind": "struct", "description": description_to_json(kind.description, _top=False)}
        if kind.version is not None:
            out["version"] = kind.version
        return out
    if isinstance(kind, Custom):
        return {"kind": "custom", "type": kind.type_name, "layout": kind.codec.describe()}
    raise DescriptionError(f"unknown field kind {kind!r}")


def _field_to_json(field: Field) -> dict[str, Any]:
    out: dict[str, Any] = {"name": field.name, **kind_to_json(field.kind)}
    if field.exists is not None:
        out["exists"] = _callable_name(field.exists)
    elif field.since_version:
        out["since_version"] = field.since_version
    return out


def description_to_json(description: Description, *, _top: bool = True) -> dict[str, Any]:
    """A description, its fields and its subsections as JSON-ready data."""
    out: dict[str, Any] = {}
    if _top:
        out["schema"] = SCHEMA_VERSION
    out.update(
        name=description.name,
        version=description.version,
        minimum_version=description.minimum_version,
        fields=[_field_to_json(f) for f in description.fields],
    )
    if description.needed is not None:
        out["needed"] = _callable_name(description.needed)
    if description.subsections:
        out["subsections"] = [description_to_json(s, _top=False) for s in description.subsections]
    return out
