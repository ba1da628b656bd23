"""Decoded values <-> plain data that every self-describing codec carries.

The converter is the core's (``vmstate.plain``) under its ``SNAPSHOT``
policy: ints and bools stay apart (msgpack, CBOR and JSON all tell them
apart) and must fit 64 bits, as every integer on QEMU's wire does; bytes
stay bytes (the JSON codec tags them, see ``_jsonl``); a value no codec can
carry is an ``EncodeError``.  Reading back checks every shape and range.
"""

from __future__ import annotations

from typing import Any

from vmstate import plain
from vmstate.description import Record
from vmstate.plain import INT_MAX, INT_MIN, record_from_plain

__all__ = ["INT_MAX", "INT_MIN", "record_from_plain", "record_to_plain"]


def record_to_plain(record: Record, path: plain.Path = ()) -> dict[str, Any]:
    """A Record as plain data; ``EncodeError`` for a value no codec can carry."""
    return plain.record_to_plain(record, plain.SNAPSHOT, path)
