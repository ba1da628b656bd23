"""Decoded records <-> plain data, with a bytes policy per output format.

A device section decodes into a ``Record`` tree whose leaves are ints,
bools, bytes (and, for generality, str) inside lists and nested Records.
Its plain form is what every output format starts from:

* a ``Record`` becomes ``{"version": v, "fields": {...}, "subsections": {...}}``
  (``subsections`` left out when empty, unless the policy keeps it).  No
  other map is a value, so any map is a Record;
* a list stays a list (a tuple becomes a list: the engine accepts both);
* ints, bools and str stay as they are;
* bytes become what the format carries: hex text for JSON and ``dump``
  (``JSON``), bytes for msgpack/CBOR snapshots (``SNAPSHOT``, which also
  refuses what no codec can carry) and for ``migration-diff`` (``DIFF``).

Turning plain data back (``record_from_plain``) is the untrusted direction:
every shape and range is checked and a bad one is a ``MalformedError``
naming the field path.
"""

from __future__ import annotations

from typing import Any, Callable

import attrs

from .description import Record
from .errors import EncodeError, LimitExceededError, MalformedError, PathItem

__all__ = [
    "INT_MAX",
    "INT_MIN",
    "PlainPolicy",
    "JSON",
    "SNAPSHOT",
    "DIFF",
    "to_plain",
    "record_to_plain",
    "record_from_plain",
]

#: the widest integers QEMU's wire carries: int64 and uint64
INT_MIN = -(1 << 63)
INT_MAX = (1 << 64) - 1
_RECORD_KEYS = frozenset(("version", "fields", "subsections"))

Path = tuple[PathItem, ...]


def _hex(data: bytes | bytearray | memoryview) -> str:
    return bytes(data).hex()


@attrs.frozen(kw_only=True)
class PlainPolicy:
    """What one output format makes of the leaves formats disagree on."""

    #: bytes, bytearray or memoryview -> the format's value
    bytes: Callable[[bytes | bytearray | memoryview], Any]
    #: refuse (``EncodeError``) an int outside int64/uint64 and any leaf that is
    #: not int, bool, str, bytes, list or Record: a snapshot must read back equal
    checked: bool = False
    #: keep ``"subsections": {}`` on every record (a diff walks both sides alike)
    all_subsections: bool = False


#: ``dump --json``, ``extract``'s state.json, the compatibility goldens
JSON = PlainPolicy(bytes=_hex)
#: msgpack, CBOR and JSON snapshots (the JSON codec tags bytes itself)
SNAPSHOT = PlainPolicy(bytes=bytes, checked=True)
#: ``migration-diff``'s value trees
DIFF = PlainPolicy(bytes=bytes, all_subsections=True)


def to_plain(value: Any, policy: PlainPolicy, path: Path = ()) -> Any:
    """A decoded value (a Record, a list, a leaf) as plain data under ``policy``."""
    if not policy.checked:
        return _unchecked(value, policy)
    if isinstance(value, Record):
        return record_to_plain(value, policy, path)
    if isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return _int_out(value, path)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return policy.bytes(value)
    if isinstance(value, (list, tuple)):
        return [to_plain(item, policy, (*path, i)) for i, item in enumerate(value)]
    raise EncodeError(f"a {type(value).__name__} cannot be stored in a snapshot", path=path)


def record_to_plain(record: Record, policy: PlainPolicy, path: Path = ()) -> dict[str, Any]:
    """A Record as ``{"version", "fields", "subsections"?}``; ``EncodeError`` for what a checked policy refuses."""
    if not policy.checked:
        return _unchecked(record, policy)  # type: ignore[no-any-return]
    plain: dict[str, Any] = {
        "version": _int_out(record.version, (*path, "version")),
        "fields": {name: to_plain(value, policy, (*path, name)) for name, value in record.fields.items()},
    }
    if record.subsections or policy.all_subsections:
        plain["subsections"] = {
            name: record_to_plain(sub, policy, (*path, name)) for name, sub in record.subsections.items()
        }
    return plain


#: leaves an unchecked policy passes through as they are
_AS_IS = (int, bool, str, type(None), float)


def _unchecked(value: Any, policy: PlainPolicy) -> Any:
    """``to_plain`` when nothing is refused: no paths are built (they only name what a checked policy refuses)."""
    if type(value) in _AS_IS:
        return value
    if isinstance(value, Record):
        plain: dict[str, Any] = {
            "version": value.version,
            "fields": {name: _unchecked(item, policy) for name, item in value.fields.items()},
        }
        if value.subsections or policy.all_subsections:
            plain["subsections"] = {name: _unchecked(sub, policy) for name, sub in value.subsections.items()}
        return plain
    if isinstance(value, (bytes, bytearray, memoryview)):
        return policy.bytes(value)
    if isinstance(value, (list, tuple)):
        return _unchecked_items(value, policy)
    return value


#: leaves whose conversion may be shared between equal records (no float: -0.0 == 0.0; bytes convert to immutables)
_FLAT = frozenset((int, bool, str, type(None), bytes))


def _leaf_types(record: Record) -> list[Any] | None:
    """The types of a record's fields (of a list field's items), or None unless all are ``_FLAT`` leaves."""
    types: list[Any] = []
    for value in record.fields.values():
        kind = type(value)
        if kind is list or kind is tuple:
            inner = tuple(map(type, value))
            if not _FLAT.issuperset(inner):
                return None
            types.append(inner)
        elif kind in _FLAT:
            types.append(kind)
        else:
            return None
    return types


def _unchecked_items(items: list[Any] | tuple[Any, ...], policy: PlainPolicy) -> list[Any]:
    """A list's items; an item equal to the record before it, with leaves of the same types, reuses its conversion.

    Virtio's 1,024 queue slots are such runs (the unused ones all zero):
    each is a fresh copy of the one before, not a call per field.
    """
    out: list[Any] = []
    last: Record | None = None
    last_types: list[Any] | None = None
    fields: dict[str, Any] = {}
    for item in items:
        if last is not None and type(item) is Record and item == last and _leaf_types(item) == last_types:
            plain: dict[str, Any] = {
                "version": item.version,
                "fields": {name: value[:] if type(value) is list else value for name, value in fields.items()},
            }
            if policy.all_subsections:
                plain["subsections"] = {}
            out.append(plain)
            continue
        converted = _unchecked(item, policy)
        out.append(converted)
        last = None
        if type(item) is Record and not item.subsections:
            last_types = _leaf_types(item)
            if last_types is not None:
                last, fields = item, converted["fields"]
    return out


def _int_out(value: Any, path: Path) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not INT_MIN <= value <= INT_MAX:
        raise EncodeError(f"expected an integer in int64/uint64 range, got {value!r}", path=path)
    return value


def record_from_plain(plain: Any, *, max_depth: int, path: Path = ()) -> Record:
    """Rebuild a Record from untrusted plain data (bytes as bytes), nesting at most ``max_depth`` deep."""
    return _record(plain, path, max_depth)


def _record(plain: Any, path: Path, depth: int) -> Record:
    if not isinstance(plain, dict):
        raise MalformedError(f"expected a record (a map), got {type(plain).__name__}", path=path)
    if depth < 0:
        raise LimitExceededError("values nest deeper than limits.max_depth allows", path=path)
    if "version" not in plain or "fields" not in plain or not set(plain) <= _RECORD_KEYS:
        raise MalformedError(f"a record map has the keys version, fields[, subsections], not {sorted(plain, key=repr)}", path=path)
    version = plain["version"]
    if isinstance(version, bool) or not isinstance(version, int) or not 0 <= version < 1 << 32:
        raise MalformedError(f"record version {version!r} is not a u32", path=path)
    fields = _names(plain["fields"], "fields", path)
    subsections = _names(plain.get("subsections", {}), "subsections", path)
    return Record(
        version=version,
        fields={name: _value(value, (*path, name), depth - 1) for name, value in fields.items()},
        subsections={name: _record(sub, (*path, name), depth - 1) for name, sub in subsections.items()},
    )


def _names(value: Any, what: str, path: Path) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MalformedError(f"record {what} is a {type(value).__name__}, not a map", path=path)
    for name in value:
        if not isinstance(name, str):
            raise MalformedError(f"record {what} has a non-text key {name!r}", path=path)
    return value


def _value(value: Any, path: Path, depth: int) -> Any:
    if isinstance(value, (bool, str, bytes)):
        return value
    if isinstance(value, int):
        if not INT_MIN <= value <= INT_MAX:
            raise MalformedError(f"integer {value} does not fit 64 bits", path=path)
        return value
    if isinstance(value, list):
        if depth < 0:
            raise LimitExceededError("values nest deeper than limits.max_depth allows", path=path)
        return [_value(item, (*path, i), depth - 1) for i, item in enumerate(value)]
    if isinstance(value, dict):
        return _record(value, path, depth)
    raise MalformedError(f"a {type(value).__name__} is not a state value", path=path)
