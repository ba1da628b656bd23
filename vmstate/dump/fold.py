"""Fold what a person need not read line by line: runs of all-zero or identical items, long byte strings.

Shared by ``vmstate dump``'s text and ``migration-diff``'s.  Values are the
plain trees of ``vmstate.plain`` (records are dicts with ``fields``); a
``vmstate.spill.Blob`` reads as the bytes it holds (a chunk at a time, never
whole), so a model folds the same whether its byte strings were spilled.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Sequence

from vmstate.spill import Blob, chunks

__all__ = ["is_zero", "same", "item_runs", "bytes_text", "scalars_text", "MIN_FOLDED", "SHORT_BYTES"]

#: a run of all-zero items this long or longer shows as one line; a run of identical ones, this long after the first
MIN_FOLDED = 2
#: byte strings up to this length show whole; longer ones as their length and a head
SHORT_BYTES = 16
#: how many bytes of a long byte string's head show
_HEAD = 32
#: a run of equal scalars in a list this long shows as ``value (N times)``
_MIN_REPEAT = 6


def is_zero(value: Any) -> bool:
    """Whether every leaf of ``value`` is 0, false, None, empty or all-zero bytes (a record's version aside)."""
    if isinstance(value, dict):
        fields = value.get("fields", value)
        return all(is_zero(v) for v in fields.values()) and all(
            is_zero(sub) for sub in value.get("subsections", {}).values())
    if isinstance(value, (list, tuple)):
        return all(is_zero(v) for v in value)
    if isinstance(value, (bytes, bytearray, Blob)):
        return _all_one_byte(value, 0)
    return value in (0, None, "")


def _all_one_byte(value: bytes | bytearray | Blob, byte: int) -> bool:
    if isinstance(value, Blob):
        return all(chunk.count(byte) == len(chunk) for chunk in value.chunks())
    return value.count(byte) == len(value)


def same(a: Any, b: Any) -> bool:
    """Whether two plain trees hold the same values (a ``Blob`` and bytes compared by content)."""
    if a == b:
        return True  # bytes and bytes, or the same Blob
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, (bytes, Blob)) and isinstance(b, (bytes, Blob)) and (isinstance(a, Blob) or isinstance(b, Blob)):
        return len(a) == len(b) and all(x == y for x, y in zip(chunks(a), chunks(b)))
    return False


def item_runs(items: Sequence[Any]) -> Iterator[tuple[str, int, int]]:
    """``(kind, start, end)`` over ``items`` in order, ``end`` exclusive.

    ``kind`` is ``zero`` (a run of at least ``MIN_FOLDED`` equal, all-zero
    items: a record's version is part of it), ``same`` (at least
    ``MIN_FOLDED`` items equal to the one just before the run) or ``one`` (a
    single item to show whole).  Items are compared with ``same``, so one
    all-zero item is tested, not every one.
    """
    i, n = 0, len(items)
    while i < n:
        item = items[i]
        k = i + 1
        while k < n and same(items[k], item):
            k += 1
        if k - i >= MIN_FOLDED and is_zero(item):
            yield "zero", i, k
        else:
            yield "one", i, i + 1
            if k - (i + 1) >= MIN_FOLDED:
                yield "same", i + 1, k
            else:
                k = i + 1
        i = k


def bytes_text(value: bytes | bytearray | Blob) -> str:
    """A byte string as short hex with its length: whole when short, else its head, or what it is all of."""
    if len(value) <= SHORT_BYTES:
        return '"' + bytes(value if not isinstance(value, Blob) else value.head(SHORT_BYTES)).hex() + '"'
    head = value.head(_HEAD) if isinstance(value, Blob) else bytes(value[:_HEAD])
    if _all_one_byte(value, head[0]):
        return f"{len(value)} bytes, all {head[0]:02x}"
    return f"{len(value)} bytes: {head.hex()}" + ("..." if len(value) > _HEAD else "")


def scalars_text(values: Sequence[Any], leaf: Callable[[Any], str]) -> str:
    """A list of scalars as ``[a, b, 0 (13 times)]``: runs of ``_MIN_REPEAT`` or more equal values counted."""
    parts, i = [], 0
    while i < len(values):
        j = i + 1
        while j < len(values) and type(values[j]) is type(values[i]) and values[j] == values[i]:
            j += 1
        text = leaf(values[i])
        if j - i >= _MIN_REPEAT:
            parts.append(f"{text} ({j - i} times)")
        else:
            parts.extend([text] * (j - i))
        i = j
    return "[" + ", ".join(parts) + "]"
