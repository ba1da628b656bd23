"""Render decoded records as plain JSON values (bytes as hex strings): ``plain`` under its JSON policy."""

from __future__ import annotations

from typing import Any

from .description import Record
from .plain import JSON, record_to_plain, to_plain

__all__ = ["to_jsonable", "record_to_json"]


def to_jsonable(value: Any) -> Any:
    """Turn a decoded value into JSON-ready data."""
    return to_plain(value, JSON)


def record_to_json(record: Record) -> dict[str, Any]:
    """A record as ``{"version", "fields", "subsections"?}``."""
    return record_to_plain(record, JSON)
