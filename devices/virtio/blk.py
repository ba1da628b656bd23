"""virtio-blk's own part (hw/block/virtio-blk.c): the requests still in flight.

``virtio_blk_save_device`` writes each pending request as a byte 1, the
queue index when the device has several queues, and the request's
``VirtQueueElement``; a byte 0 ends the list.  The list has no count, so this
part is code (a loop), as in QEMU, with each request itself a description.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import attrs

from vmstate import field, state, struct
from vmstate.description import Description, Record
from vmstate.engine import decode, encode
from vmstate.errors import EncodeError, LimitExceededError, MalformedError
from vmstate.kinds import INT8, UINT32
from vmstate.typed import description_of
from vmstate.wire import ByteReader

from .element import VirtQueueElement
from .save_load import DeviceContext

__all__ = ["VirtIOBlockRequest", "VIRTIO_BLK", "VirtioBlkPart"]


def _multiqueue(view: Any, version: int) -> bool:
    return bool(getattr(view, "num_queues", 1) > 1)


@state(name="virtio-blk request", version=1, minimum_version=1)
class VirtIOBlockRequest:
    """One in-flight request."""

    #: nonzero: a request follows (QEMU writes 1)
    more: int = field(INT8, default=1)
    queue_index: int = field(UINT32, exists=_multiqueue)
    element: VirtQueueElement = field(struct(VirtQueueElement))


@lru_cache(maxsize=1)
def _request() -> Description:
    return description_of(VirtIOBlockRequest)


@attrs.frozen
class VirtioBlkPart:
    """virtio-blk's save/load: a 0-terminated list of requests."""

    savevm_name: str = "virtio-blk"
    version: int = 2
    minimum_version: int = 2

    def load(self, reader: ByteReader, context: DeviceContext) -> Record:
        requests: list[Record] = []
        path = (*context.path, "requests")
        # each in-flight request holds a descriptor chain head: no more than the rings' slots
        slots = sum(int(q.fields["num"]) for q in context.common["vq"])
        while True:
            if reader.peek(1) == b"\x00":
                reader.skip(1)
                return Record(version=context.version, fields={"requests": requests})
            if len(requests) >= context.limits.max_array_count:
                raise LimitExceededError(
                    f"more than limits.max_array_count = {context.limits.max_array_count} requests",
                    offset=reader.offset,
                    path=path,
                )
            if len(requests) >= slots:
                raise MalformedError(
                    f"more than {slots} requests in flight, the number of ring slots", offset=reader.offset, path=path
                )
            requests.append(
                decode(_request(), reader, 1, limits=context.limits, path=(*path, len(requests)), scopes=(context.common,))
            )

    def save(self, record: Record | None, context: DeviceContext) -> bytes:
        if record is None or not isinstance(record.fields.get("requests"), list):
            raise EncodeError("virtio-blk needs a requests list", path=context.path)
        out = []
        for index, request in enumerate(record.fields["requests"]):
            if not isinstance(request, Record) or not request.fields.get("more"):
                raise EncodeError("a request must be a Record with a nonzero 'more'", path=(*context.path, "requests", index))
            out.append(encode(_request(), request, path=(*context.path, "requests", index), scopes=(context.common,)))
        out.append(b"\x00")
        return b"".join(out)

    def describe(self) -> dict[str, Any]:
        from vmstate.schema import description_to_json

        return {"requests": "repeated while the next byte is nonzero; a 0 byte ends the list",
                "request": description_to_json(_request(), _top=False)}


VIRTIO_BLK = VirtioBlkPart()
