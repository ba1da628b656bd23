"""msgpack items: one msgpack object per item, back to back (the compact default).

Bytes are msgpack ``bin``, text is ``str``.  Reading uses ``msgpack.Unpacker``
with every size limit it has, so a hostile length fails before it allocates,
and its list and map hooks count the values of each item as they are built
(``ObjectCounter``): its limits bound one list, not how many there are.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgpack  # type: ignore[import-untyped]

from vmstate.errors import (
    DecodeError,
    EncodeError,
    LimitExceededError,
    MalformedError,
    TruncatedError,
)
from vmstate.limits import Limits

from ._codec import ObjectCounter, item_budget
from ._window import ContentWindow

__all__ = ["MSGPACK"]

_READ_SIZE = 1 << 20


class _Msgpack:
    name = "msgpack"

    def encode(self, item: Any) -> bytes:
        try:
            return msgpack.packb(item, use_bin_type=True)  # type: ignore[no-any-return]
        except (TypeError, ValueError, OverflowError) as error:
            raise EncodeError(f"msgpack cannot carry this item: {error}") from None

    def max_item_bytes(self, limits: Limits) -> int:
        return item_budget(limits)

    def items(self, window: ContentWindow, limits: Limits) -> Iterator[tuple[int, Any]]:
        budget = item_budget(limits)
        counter = ObjectCounter(limits)

        def counted_list(values: list[Any]) -> list[Any]:
            counter.add(len(values) + 1)
            return values

        def counted_map(pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:
            counter.add(2 * len(pairs) + 1)
            return dict(pairs)

        unpacker = msgpack.Unpacker(
            window,
            read_size=min(_READ_SIZE, budget),
            max_buffer_size=budget,
            max_bin_len=budget,
            max_str_len=budget,
            max_array_len=limits.max_array_count,
            max_map_len=limits.max_array_count,
            max_ext_len=0,
            raw=False,
            strict_map_key=True,
            list_hook=counted_list,
            object_pairs_hook=counted_map,
        )
        base = window.tell()
        while True:
            offset = base + unpacker.tell()
            if offset >= window.end:
                return
            counter.count = 0
            try:
                item = unpacker.unpack()
            except LimitExceededError as error:
                error.add_context(offset=offset)
                raise
            except msgpack.OutOfData:
                raise TruncatedError("the items end inside a msgpack object", offset=offset) from None
            except msgpack.BufferFull:
                raise LimitExceededError(f"a msgpack item exceeds the {budget}-byte item limit (limits.max_buffer)", offset=offset) from None
            except (ValueError, TypeError, msgpack.UnpackException) as error:
                raise _unpack_error(error, offset) from None
            yield offset, item


def _unpack_error(error: Exception, offset: int) -> DecodeError:
    text = str(error) or type(error).__name__
    if "exceeds max_" in text:
        return LimitExceededError(f"msgpack: {text}", offset=offset)
    if isinstance(error, msgpack.StackError):
        return LimitExceededError("msgpack: objects nest too deep", offset=offset)
    return MalformedError(f"not valid msgpack: {text}", offset=offset)


MSGPACK = _Msgpack()
