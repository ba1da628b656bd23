"""Render decoded records as plain JSON values (bytes as hex strings)."""

from __future__ import annotations

from typing import Any

from .description import Record

__all__ = ["to_jsonable", "record_to_json"]


def to_jsonable(value: Any) -> Any:
    """Turn a decoded value into JSON-ready data."""
    if isinstance(value, Record):
        return record_to_json(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, list):
        return [to_jsonable(v) for v in value]
    return value


def record_to_json(record: Record) -> dict[str, Any]:
    """A record as ``{"version", "fields", "subsections"?}``."""
    out: dict[str, Any] = {
        "version": record.version,
        "fields": {name: to_jsonable(value) for name, value in record.fields.items()},
    }
    if record.subsections:
        out["subsections"] = {name: record_to_json(sub) for name, sub in record.subsections.items()}
    return out
