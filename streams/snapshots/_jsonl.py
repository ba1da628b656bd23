"""JSON items: JSON Lines, one compact ASCII object per line.

JSON has no bytes, so bytes become ``{"$base64": "..."}``; a map key that
starts with ``$`` is written with one more ``$`` in front, so no key of
ours (or of a hostile vmdesc) can be mistaken for the tag.  Lines are read
with a maximum length and at most ``item_objects`` values, bounded before
parsing: every value but the first of a list or map follows a comma, and
every list or map opens with a bracket, so brackets plus commas plus one
bound the values, a map entry counting once (a count in C, over bytes
already read); floats, NaN and duplicate keys are refused.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from typing import Any

from vmstate.errors import (
    EncodeError,
    LimitExceededError,
    MalformedError,
    TruncatedError,
)
from vmstate.limits import Limits

from ._codec import ITEM_OBJECT_SLACK, item_budget, item_objects
from ._window import ContentWindow

__all__ = ["JSON_LINES", "from_json_pairs", "to_json_ready"]

_BYTES_TAG = "$base64"
_LINE_CHUNK = 1 << 20


def max_line(limits: Limits) -> int:
    """Bytes one JSON line may take: base64 and decimal digits need about twice the binary size."""
    return 2 * item_budget(limits)


def _key(key: str) -> str:
    return "$" + key if key.startswith("$") else key


def to_json_ready(value: Any) -> Any:
    """Tag bytes and escape ``$`` keys, recursively."""
    if isinstance(value, dict):
        return {_key(k): to_json_ready(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_json_ready(v) for v in value]
    if isinstance(value, bytes):
        return {_BYTES_TAG: base64.b64encode(value).decode("ascii")}
    return value


def from_json_pairs(pairs: list[tuple[str, Any]]) -> Any:
    """``object_pairs_hook``: untag bytes, unescape keys, refuse duplicates."""
    if len(pairs) == 1 and pairs[0][0] == _BYTES_TAG:
        text = pairs[0][1]
        if not isinstance(text, str):
            raise MalformedError(f"{_BYTES_TAG} holds a {type(text).__name__}, not text")
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError) as error:
            raise MalformedError(f"bad base64: {error}") from None
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key.startswith("$"):
            if not key.startswith("$$"):
                raise MalformedError(f"unknown tag {key!r} in a JSON map")
            key = key[1:]
        if key in out:
            raise MalformedError(f"duplicate key {key!r} in a JSON map")
        out[key] = value
    return out


def _refuse(text: str) -> Any:
    raise MalformedError(f"number {text} is not an integer")


class _JsonLines:
    name = "json"

    def encode(self, item: Any) -> bytes:
        try:
            text = json.dumps(to_json_ready(item), separators=(",", ":"), ensure_ascii=True, allow_nan=False)
        except (TypeError, ValueError) as error:
            raise EncodeError(f"JSON cannot carry this item: {error}") from None
        return text.encode("ascii") + b"\n"

    def max_item_bytes(self, limits: Limits) -> int:
        return max_line(limits)

    @staticmethod
    def _line(window: ContentWindow, limit: int, objects: int, offset: int) -> bytearray:
        """The next line (at most ``limit + 1`` bytes), read in chunks; refused early if it holds too many values."""
        line = bytearray()
        marks = 0
        while len(line) <= limit:
            chunk = window.readline(min(_LINE_CHUNK, limit + 1 - len(line)))
            line += chunk
            marks += chunk.count(b",") + chunk.count(b"[") + chunk.count(b"{")
            if marks >= objects:
                raise LimitExceededError(
                    f"a JSON line holds more than {objects} values (limits.max_array_count + {ITEM_OBJECT_SLACK})",
                    offset=offset,
                )
            if not chunk or chunk.endswith(b"\n"):
                break
        return line

    def items(self, window: ContentWindow, limits: Limits) -> Iterator[tuple[int, Any]]:
        limit = max_line(limits)
        objects = item_objects(limits)
        while not window.at_end():
            offset = window.tell()
            line = self._line(window, limit, objects, offset)
            if not line.endswith(b"\n"):
                if len(line) > limit:
                    raise LimitExceededError(f"a JSON line is longer than {limit} bytes (2 x (limits.max_buffer + 1 MiB))", offset=offset)
                raise TruncatedError("the items end inside a JSON line", offset=offset + len(line))
            try:
                item = json.loads(line, object_pairs_hook=from_json_pairs, parse_float=_refuse, parse_constant=_refuse)
            except MalformedError as error:
                error.add_context(offset=offset)
                raise
            except RecursionError:
                raise LimitExceededError("JSON nests too deep", offset=offset) from None
            except (ValueError, UnicodeDecodeError) as error:
                raise MalformedError(f"not valid JSON: {error}", offset=offset) from None
            yield offset, item


JSON_LINES = _JsonLines()
