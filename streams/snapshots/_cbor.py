"""CBOR items: a CBOR sequence (RFC 8742), one data item per item.

cbor2 has a nesting limit but no size limits: it would grow a long string
as far as the file goes and build as many values as the bytes describe.
So ``ItemScanner`` first finds each item's end within a byte budget and
counts its values (``item_objects``), and only then does cbor2 decode it;
tags are refused (shared and string references could multiply memory; no
item of ours uses a tag).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import cbor2

from vmstate.errors import EncodeError, MalformedError
from vmstate.limits import Limits

from ._cbor_scan import ItemScanner
from ._codec import ObjectCounter, item_budget, nesting_limit
from ._window import ContentWindow

__all__ = ["CBOR"]

#: the tags cbor2 decodes by itself (dates, bignums, shared refs, sets, ...)
_BUILTIN_TAGS = (0, 1, 2, 3, 4, 5, 25, 28, 29, 30, 35, 36, 37, 52, 54, 100, 256, 258, 260, 261, 1004, 55799)


class _TagRefused(ValueError):
    pass


def _refuse_semantic(_decoder: Any, *_value: Any) -> Any:
    raise _TagRefused("CBOR tags are not part of a snapshot")


def _refuse_tag(_decoder: Any, tag: Any) -> Any:
    raise _TagRefused(f"CBOR tag {getattr(tag, 'tag', '?')} is not part of a snapshot")


class _Cbor:
    name = "cbor"

    def encode(self, item: Any) -> bytes:
        try:
            return cbor2.dumps(item)
        except (cbor2.CBOREncodeError, TypeError, ValueError) as error:
            raise EncodeError(f"CBOR cannot carry this item: {error}") from None

    def max_item_bytes(self, limits: Limits) -> int:
        return item_budget(limits)

    def items(self, window: ContentWindow, limits: Limits) -> Iterator[tuple[int, Any]]:
        scanner = ItemScanner(window, item_budget(limits), ObjectCounter(limits))
        options: dict[str, Any] = {
            "max_depth": nesting_limit(limits),
            "allow_indefinite": False,
            "strict_hashable_types": True,
            "tag_hook": _refuse_tag,
            "semantic_decoders": {tag: _refuse_semantic for tag in _BUILTIN_TAGS},
        }
        while not scanner.at_end():
            offset, data = scanner.next_item()
            try:
                item = cbor2.loads(data, **options)
            except (cbor2.CBORDecodeError, ValueError, TypeError, RecursionError) as error:
                raise MalformedError(f"not valid CBOR: {error}", offset=offset) from None
            yield offset, item


CBOR = _Cbor()
