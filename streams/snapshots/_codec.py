"""What a self-describing codec is: a framing of a sequence of plain items.

An item is plain data (maps with text keys, lists, text, bytes, ints,
bools).  A codec turns one item into bytes and reads items back one at a
time from a ``ContentWindow``, within limits derived from the caller's
``Limits`` so that no length read from the file allocates beyond them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from vmstate.errors import LimitExceededError
from vmstate.limits import Limits

from ._window import ContentWindow

__all__ = ["ITEM_OBJECT_SLACK", "ITEM_SLACK", "Codec", "ObjectCounter", "item_budget", "item_objects", "nesting_limit"]

#: room for an item's keys and small fields beside its largest byte string
ITEM_SLACK = 1 << 20


def item_budget(limits: Limits) -> int:
    """Bytes one binary item may take: one buffer of ``limits.max_buffer`` plus slack."""
    return limits.max_buffer + ITEM_SLACK


#: room for an item's keys and small values beside its longest list
ITEM_OBJECT_SLACK = 1 << 16


def item_objects(limits: Limits) -> int:
    """Values (lists, maps, keys, scalars) one item may hold: one longest list plus slack.

    A byte budget alone does not bound memory: an empty list is one byte in
    msgpack and CBOR but a 56-byte Python object, so 65 MB of them is GBs.
    Codecs count what they can see cheaply, so a list or map may count twice
    (as a value of its parent and as a container): a bound, not a census.
    """
    return limits.max_array_count + ITEM_OBJECT_SLACK


class ObjectCounter:
    """Count the values of one item as a decoder builds them; ``LimitExceededError`` past the budget."""

    def __init__(self, limits: Limits) -> None:
        self.budget = item_objects(limits)
        self.count = 0

    def add(self, values: int, offset: int | None = None) -> None:
        """Count ``values`` more; raise once the item holds more than the budget."""
        self.count += values
        if self.count > self.budget:
            raise self.exceeded(offset)

    def exceeded(self, offset: int | None = None) -> LimitExceededError:
        """The error for an item over the budget."""
        return LimitExceededError(
            f"an item holds more than {self.budget} values (limits.max_array_count + {ITEM_OBJECT_SLACK})", offset=offset
        )


def nesting_limit(limits: Limits) -> int:
    """How deep an item's maps and lists may nest.

    A description nests ``limits.max_depth`` deep; each level is a record
    map, its fields map, and maybe lists, plus a few levels of the item.
    """
    return 4 * limits.max_depth + 8


class Codec(Protocol):
    """One self-describing framing of items."""

    @property
    def name(self) -> str:
        """``msgpack``, ``cbor`` or ``json``."""

    def encode(self, item: Any) -> bytes:
        """The bytes of one item; ``EncodeError`` if the format cannot carry it."""

    def max_item_bytes(self, limits: Limits) -> int:
        """The largest encoded item ``items`` accepts under ``limits``."""

    def items(self, window: ContentWindow, limits: Limits) -> Iterator[tuple[int, Any]]:
        """Yield ``(file offset, item)`` until the window is used up; only our errors escape."""
