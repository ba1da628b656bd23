"""A value as a person writes it, parsed by the kind of field it goes into; and shown back the same way.

Integers in any base (``0x1f``, ``0o17``, ``31``, ``1_000``) or by name
where the field names its values (``device_endian=little``); MAC addresses
as ``52:54:00:ab:cd:ef``; other byte buffers as hex (``00ff``, ``00:ff`` and
``0x00ff`` too), a text buffer also as a quoted string (``"running"``);
lists of numbers as JSON lists.  A value that does not fit (too wide, the
wrong length, an unknown name) is an ``EditError`` saying what fits.

Which kind a path names comes from the description the section was decoded
with (``kind_at``); a custom field kind whose codec offers
``value_description(value)`` (the virtio field) is looked into as well.
Where no kind is known the current value's type decides.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..description import Array, Bool, Buffer, Custom, Description, Int, Items, Kind, Prefixed, Record, Struct, Unused
from ..errors import EditError, PathItem

__all__ = ["kind_at", "parse_value", "show_value", "format_mac"]

Steps = tuple[PathItem, ...]
_HEX_SEPARATORS = re.compile(r"[\s:_-]")


def _unwrap(kind: Kind | Description | None, node: Any) -> Kind | Description | None:
    """A struct's or a custom codec's description, for looking up a name inside it."""
    if isinstance(kind, Struct):
        return kind.description
    if isinstance(kind, Custom):
        describe = getattr(kind.codec, "value_description", None)
        return describe(node) if callable(describe) and isinstance(node, Record) else None
    return kind


def kind_at(description: Description, root: Record, steps: Steps) -> Kind | Description | None:
    """The kind of the field at ``steps`` (a ``Description`` for a record or subsection); None if unknown."""
    current: Kind | Description | None = description
    node: Any = root
    for step in steps:
        current = _unwrap(current, node)
        if isinstance(step, int):
            if isinstance(current, Array):
                current = current.element
            elif isinstance(current, Items) and step < len(current.elements):
                current = current.elements[step]
            else:
                current = None
            node = node[step] if isinstance(node, list) and step < len(node) else None
            continue
        if isinstance(current, Description):
            by_name = {f.name: f.kind for f in current.fields}
            current = by_name.get(step) or current.subsection(step)
        else:
            current = None
        if isinstance(node, Record):
            node = node.fields.get(step, node.subsections.get(step))
        else:
            node = None
    return _unwrap(current, node) if isinstance(current, Struct) else current


def format_mac(data: bytes) -> str:
    """Six bytes as ``52:54:00:12:34:56``."""
    return ":".join(f"{b:02x}" for b in data)


def _is_mac(kind: Kind | Description | None, current: Any) -> bool:
    if isinstance(kind, Buffer):
        return kind.type_name == "mac" or (kind.size == 6 and "mac" in kind.type_name)
    return False


def _integer(text: str, kind: Int | None, where: str) -> int:
    stripped = text.strip()
    if kind is not None and kind.names:
        for number, name in kind.names:
            if stripped.lower() == name.lower():
                return number
    try:
        value = int(stripped, 0)
    except ValueError:
        names = f" or one of {', '.join(name for _n, name in kind.names)}" if kind is not None and kind.names else ""
        raise EditError(f"{where}: {text!r} is not an integer (decimal, 0x.., 0o.., 0b..){names}") from None
    if kind is not None and not kind.minimum <= value <= kind.maximum:
        raise EditError(f"{where}: {value} does not fit {kind.type_name} ({kind.minimum}..{kind.maximum})")
    return value


def _boolean(text: str, where: str) -> int:
    word = text.strip().lower()
    if word in ("1", "true", "on", "yes"):
        return 1
    if word in ("0", "false", "off", "no"):
        return 0
    raise EditError(f"{where}: {text!r} is not a bool (true/false, on/off, 1/0)")


def _json(text: str, expected: type, message: str) -> Any:
    """``text`` parsed as JSON of type ``expected``, else an ``EditError`` saying ``message``.

    Deep nesting is refused like bad JSON, not left to raise ``RecursionError``.
    """
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        raise EditError(message) from None
    if not isinstance(value, expected):
        raise EditError(message)
    return value


def _bytes(text: str, kind: Kind | Description | None, current: Any, where: str) -> bytes:
    stripped = text.strip()
    size = _size_of(kind, current)
    if stripped.startswith('"'):
        decoded = _json(stripped, str, f"{where}: {text!r} is not a quoted string")
        try:
            data = decoded.encode("latin-1")
        except UnicodeEncodeError:
            raise EditError(f"{where}: only latin-1 text fits a byte buffer") from None
        if size is not None:
            if len(data) > size:
                raise EditError(f"{where}: {len(data)} bytes of text do not fit this {size}-byte buffer")
            data = data.ljust(size, b"\0")
        return data
    digits = _HEX_SEPARATORS.sub("", stripped)
    if digits[:2].lower() == "0x":
        digits = digits[2:]
    try:
        data = bytes.fromhex(digits)
    except ValueError:
        what = "a MAC address (52:54:00:12:34:56)" if _is_mac(kind, current) else "hex bytes (00ff.. or 00:ff:..)"
        raise EditError(f"{where}: {text!r} is not {what}") from None
    if size is not None and len(data) != size:
        raise EditError(f"{where}: {len(data)} bytes given, the field holds {size}")
    return data


def _size_of(kind: Kind | Description | None, current: Any) -> int | None:
    """The byte count a buffer must keep: its fixed size, else (a length another field gives) its current one."""
    if isinstance(kind, Unused):
        return kind.size
    if isinstance(kind, Buffer) and kind.size is not None:
        return kind.size
    if isinstance(kind, Prefixed):
        return None
    return len(current) if isinstance(current, (bytes, bytearray)) else None


def parse_value(text: str, kind: Kind | Description | None, current: Any, where: str) -> Any:
    """``text`` as a value for a field of ``kind`` whose value is now ``current``; ``where`` names it in errors."""
    if isinstance(kind, Description) or isinstance(current, Record):
        raise EditError(f"{where} is a record: set one of its fields")
    if isinstance(kind, Bool) or (kind is None and isinstance(current, bool)):
        return _boolean(text, where)
    if isinstance(kind, Int) or (kind is None and isinstance(current, int)):
        return _integer(text, kind if isinstance(kind, Int) else None, where)
    if isinstance(kind, (Buffer, Unused, Prefixed)) or isinstance(current, (bytes, bytearray)):
        return _bytes(text, kind, current, where)
    if isinstance(kind, (Array, Items)) or isinstance(current, list):
        return _list(text, kind, current, where)
    if isinstance(current, str):
        return text
    raise EditError(f"{where}: a value of this kind cannot be set from text")


def _list(text: str, kind: Kind | Description | None, current: Any, where: str) -> list[Any]:
    items = _json(text, list, f"{where}: a list is written as a JSON list, as in [1, 2, 3]")
    if isinstance(current, list) and len(items) != len(current):
        raise EditError(f"{where}: {len(items)} items given, the list has {len(current)} (set the count field to "
                        "change its length)")
    element = kind.element if isinstance(kind, Array) else None
    out = []
    for i, item in enumerate(items):
        old = current[i] if isinstance(current, list) and i < len(current) else None
        if isinstance(item, bool) or not isinstance(item, (int, str)):
            raise EditError(f"{where}[{i}]: list items are numbers or strings")
        out.append(parse_value(str(item), element, old, f"{where}[{i}]"))
    return out


def show_value(value: Any, kind: Kind | Description | None) -> str:
    """``value`` as ``--get`` prints it: named integers, MACs and hex as ``--set`` reads them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        names = dict(kind.names) if isinstance(kind, Int) else {}
        return f"{names[value]} ({value})" if value in names else str(value)
    if isinstance(value, (bytes, bytearray)):
        if _is_mac(kind, value) and len(value) == 6:
            return format_mac(bytes(value))
        if isinstance(kind, Buffer) and kind.text:
            text = bytes(value).rstrip(b"\0")
            if b"\0" not in text:
                return json.dumps(text.decode("latin-1"))
        return bytes(value).hex()
    if isinstance(value, list):
        element = kind.element if isinstance(kind, Array) else None
        return "[" + ", ".join(show_value(v, element) for v in value) + "]"
    if isinstance(value, Record):
        from ..jsonable import record_to_json

        return json.dumps(record_to_json(value), sort_keys=False)
    return str(value)
