"""What a self-describing codec is: a framing of a sequence of plain items.

An item is plain data (maps with text keys, lists, text, bytes, ints,
bools).  A codec turns one item into bytes and reads items back one at a
time from a ``ContentWindow``, within limits derived from the caller's
``Limits`` so that no length read from the file allocates beyond them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from vmstate.limits import Limits

from ._window import ContentWindow

__all__ = ["ITEM_SLACK", "Codec", "item_budget", "nesting_limit"]

#: room for an item's keys and small fields beside its largest byte string
ITEM_SLACK = 1 << 20


def item_budget(limits: Limits) -> int:
    """Bytes one binary item may take: one buffer of ``limits.max_buffer`` plus slack."""
    return limits.max_buffer + ITEM_SLACK


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
