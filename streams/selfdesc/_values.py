"""Decoded values <-> plain data that every self-describing codec carries.

A device section decodes into a ``Record`` tree whose leaves are ints,
bools, bytes (and, for generality, str) inside lists and nested Records.
The plain form keeps every one of those apart without a schema:

* ints and bools stay ints and bools (msgpack, CBOR and JSON all tell them
  apart); ints must fit 64 bits, as every integer on QEMU's wire does;
* bytes stay bytes (the JSON codec tags them, see ``_jsonl``);
* a list stays a list (a tuple becomes a list: the engine accepts both);
* a ``Record`` becomes ``{"version": v, "fields": {...}, "subsections": {...}}``
  (``subsections`` left out when empty).  No other map is a value, so any
  map is a Record.

Turning plain data back is the untrusted direction: every shape and range
is checked and a bad one is a ``MalformedError`` naming the field path.
"""

from __future__ import annotations

from typing import Any

from vmstate.description import Record
from vmstate.errors import EncodeError, LimitExceededError, MalformedError, PathItem

__all__ = ["INT_MAX", "INT_MIN", "record_from_plain", "record_to_plain"]

#: the widest integers QEMU's wire carries: int64 and uint64
INT_MIN = -(1 << 63)
INT_MAX = (1 << 64) - 1
_RECORD_KEYS = frozenset(("version", "fields", "subsections"))

Path = tuple[PathItem, ...]


def record_to_plain(record: Record, path: Path = ()) -> dict[str, Any]:
    """A Record as plain data; ``EncodeError`` for a value no codec can carry."""
    plain: dict[str, Any] = {
        "version": _int_out(record.version, (*path, "version")),
        "fields": {name: _value_to_plain(value, (*path, name)) for name, value in record.fields.items()},
    }
    if record.subsections:
        plain["subsections"] = {
            name: record_to_plain(sub, (*path, name)) for name, sub in record.subsections.items()
        }
    return plain


def _int_out(value: Any, path: Path) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not INT_MIN <= value <= INT_MAX:
        raise EncodeError(f"expected an integer in int64/uint64 range, got {value!r}", path=path)
    return value


def _value_to_plain(value: Any, path: Path) -> Any:
    if isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return _int_out(value, path)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, Record):
        return record_to_plain(value, path)
    if isinstance(value, (list, tuple)):
        return [_value_to_plain(item, (*path, i)) for i, item in enumerate(value)]
    raise EncodeError(f"a {type(value).__name__} cannot be stored in a snapshot", path=path)


def record_from_plain(plain: Any, *, max_depth: int, path: Path = ()) -> Record:
    """Rebuild a Record from untrusted plain data, nesting at most ``max_depth`` deep."""
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
