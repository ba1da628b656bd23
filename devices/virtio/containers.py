"""QEMU's linked containers on the wire: ``VMSTATE_QLIST`` and ``VMSTATE_GTREE`` (migration/vmstate-types.c).

``put_qlist`` writes each element as a byte 1 and the element's fields (no
section header, no version); a byte 0 ends the list.  ``put_gtree`` writes
the node count as be32, then per node a byte 1, the key (a be64 for a
"direct" key, else the key's fields) and the value's fields, then a byte 0;
``get_gtree`` refuses a stream whose node count and nodes differ.  Neither
list carries a length we could check before reading, so each element read
counts against ``limits.max_array_count``.
"""

from __future__ import annotations

from typing import Any

import attrs

from vmstate.description import CustomContext, Description, Record
from vmstate.engine import decode, encode
from vmstate.errors import EncodeError, LimitExceededError, MalformedError
from vmstate.wire import ByteReader

__all__ = ["QList", "GTree"]

_MORE, _END = b"\x01", b"\x00"


def _marker(reader: ByteReader, path: tuple[str | int, ...]) -> bool:
    """Read one list marker: True for 1 (an element follows), False for 0."""
    offset = reader.offset
    byte = reader.read(1)
    if byte not in (_MORE, _END):
        raise MalformedError(f"list marker must be 0 or 1, got {byte[0]}", offset=offset, path=path)
    return byte == _MORE


def _check_count(count: int, context: CustomContext, offset: int) -> None:
    if count > context.limits.max_array_count:
        raise LimitExceededError(
            f"more than limits.max_array_count = {context.limits.max_array_count} elements",
            offset=offset,
            path=context.path,
        )


def _element(description: Description, reader: ByteReader, context: CustomContext, path: tuple[str | int, ...]) -> Record:
    # the elements are saved with vmstate_save_state: loaded at the description's own version
    return decode(description, reader, description.version, limits=context.limits, path=path, _depth=context.depth)


@attrs.frozen
class QList:
    """``VMSTATE_QLIST``: elements of one description, each after a byte 1, then a byte 0."""

    element: Description

    def decode(self, reader: ByteReader, context: CustomContext) -> list[Record]:
        items: list[Record] = []
        while _marker(reader, (*context.path, len(items))):
            _check_count(len(items) + 1, context, reader.offset - 1)
            items.append(_element(self.element, reader, context, (*context.path, len(items))))
        return items

    def encode(self, value: Any, context: CustomContext) -> bytes:
        if not isinstance(value, list) or not all(isinstance(v, Record) for v in value):
            raise EncodeError("a qlist is a list of Records", path=context.path)
        out = []
        for index, item in enumerate(value):
            out += [_MORE, encode(self.element, item, path=(*context.path, index))]
        out.append(_END)
        return b"".join(out)

    def describe(self) -> dict[str, Any]:
        from vmstate.schema import description_to_json

        return {"layout": "qlist: per element a byte 1 and its fields; a byte 0 ends it",
                "element": description_to_json(self.element, _top=False)}


@attrs.frozen
class GTree:
    """``VMSTATE_GTREE``: be32 node count, per node a byte 1, key and value, then a byte 0.

    Each node decodes as a Record with fields ``key`` (an int for a direct
    key, else a Record) and ``value``.
    """

    value: Description
    #: None: a direct key (the pointer value, as be64)
    key: Description | None = None

    def decode(self, reader: ByteReader, context: CustomContext) -> list[Record]:
        start = reader.offset
        count = reader.u32()
        _check_count(count, context, start)
        nodes: list[Record] = []
        while _marker(reader, (*context.path, len(nodes))):
            if len(nodes) == count:
                raise MalformedError(f"more nodes than the count {count}", offset=reader.offset - 1, path=context.path)
            path = (*context.path, len(nodes))
            key: int | Record = (
                reader.u64() if self.key is None else _element(self.key, reader, context, (*path, "key"))
            )
            value = _element(self.value, reader, context, (*path, "value"))
            nodes.append(Record(version=1, fields={"key": key, "value": value}))
        if len(nodes) != count:
            raise MalformedError(f"{len(nodes)} nodes, the count says {count}", offset=reader.offset - 1, path=context.path)
        return nodes

    def encode(self, value: Any, context: CustomContext) -> bytes:
        if not isinstance(value, list) or not all(isinstance(v, Record) for v in value):
            raise EncodeError("a gtree is a list of Records with fields key and value", path=context.path)
        out = [len(value).to_bytes(4, "big")]
        for index, node in enumerate(value):
            path = (*context.path, index)
            key, item = node.fields.get("key"), node.fields.get("value")
            if not isinstance(item, Record):
                raise EncodeError("a gtree node's value must be a Record", path=(*path, "value"))
            out.append(_MORE)
            if self.key is None:
                if not isinstance(key, int) or not 0 <= key < 1 << 64:
                    raise EncodeError("a direct key must be an int in [0, 2**64)", path=(*path, "key"))
                out.append(key.to_bytes(8, "big"))
            elif isinstance(key, Record):
                out.append(encode(self.key, key, path=(*path, "key")))
            else:
                raise EncodeError("a gtree node's key must be a Record", path=(*path, "key"))
            out.append(encode(self.value, item, path=(*path, "value")))
        out.append(_END)
        return b"".join(out)

    def describe(self) -> dict[str, Any]:
        from vmstate.schema import description_to_json

        key = "direct (be64)" if self.key is None else description_to_json(self.key, _top=False)
        return {"layout": "gtree: be32 count; per node a byte 1, key, value; a byte 0 ends it",
                "key": key, "value": description_to_json(self.value, _top=False)}
