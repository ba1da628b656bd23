"""The common virtio save/load, calling each device class's own save/load.

This is QEMU's ``virtio_save``/``virtio_load`` (hw/virtio/virtio.c) as the
``virtio`` field info of every virtio device section:

1. the transport's config (``save_config``);
2. the common ``VirtIODevice`` fields and the queues;
3. the device class's own part: its ``save``/``load`` calls, introduced by
   QEMU 2.2's "virtio: introduce device specific migration calls" so that
   device fields no longer follow the common part directly;
4. the ``virtio`` vmsd: optional subsections only, written last.

The decoded value is one ``Record``: ``transport``, the common fields, ``vq``
(a list), ``device`` (absent for devices with no part of their own) and the
``virtio/...`` subsections that were on the wire.
"""

from __future__ import annotations

from typing import Any, Protocol

import attrs

from vmstate.description import Custom, CustomContext, Description, Field, Record, Struct
from vmstate.engine import decode, encode
from vmstate.errors import EncodeError, MalformedError
from vmstate.limits import Limits
from vmstate.wire import ByteReader

from .common import COMMON_HEAD, VIRTIO_QUEUE_MAX, queues_description, virtio_description
from .transport import Transport

__all__ = ["DeviceContext", "VirtioDeviceClass", "VirtioCodec", "virtio_field", "COMMON_FIELDS"]

Path = tuple[str | int, ...]

#: the fields of step 2, in wire order (``vq`` follows them)
COMMON_FIELDS = tuple(f.name for f in COMMON_HEAD.fields)


@attrs.frozen(kw_only=True)
class DeviceContext:
    """What a device class's save/load may consult: the section version and the common fields."""

    limits: Limits
    path: Path
    version: int
    #: transport, common fields and queues, as decoded (or about to be encoded)
    common: dict[str, Any]


class VirtioDeviceClass(Protocol):
    """A virtio device model's migration hooks (QEMU's ``VirtioDeviceClass`` save/load/vmsd)."""

    @property
    def savevm_name(self) -> str:
        """The section's vmsd name, e.g. ``virtio-net``; ``virtio-console`` for virtio-serial."""

    @property
    def version(self) -> int:
        """The section version written."""

    @property
    def minimum_version(self) -> int:
        """The oldest section version loaded."""

    def load(self, reader: ByteReader, context: DeviceContext) -> Record | None:
        """Read the device's own part; None if the device has none."""

    def save(self, record: Record | None, context: DeviceContext) -> bytes:
        """Write the device's own part."""

    def describe(self) -> dict[str, Any] | None:
        """The device part's layout as JSON, None if there is none."""


def _queues(transport: Transport, config: Record) -> Description:
    layout = transport.queue_layout(config)
    return queues_description(vring_align=layout.vring_align, vector=layout.vector)


class VirtioCodec:
    """The ``virtio`` field info for one device class on one transport."""

    def __init__(self, device_class: VirtioDeviceClass, transport: Transport) -> None:
        self.device_class = device_class
        self.transport = transport
        self._virtio = virtio_description(transport.name)

    def decode(self, reader: ByteReader, context: CustomContext) -> Record:
        limits, path = context.limits, context.path
        config = self.transport.load_config(reader, limits, (*path, "transport"))
        head = decode(COMMON_HEAD, reader, 1, limits=limits, path=path)
        count = head.fields["num_queues"]
        if count > VIRTIO_QUEUE_MAX:
            raise MalformedError(
                f"{count} queues exceed VIRTIO_QUEUE_MAX = {VIRTIO_QUEUE_MAX}",
                offset=reader.offset - 4,
                path=(*path, "num_queues"),
            )
        queues = decode(_queues(self.transport, config), reader, 1, limits=limits, path=path, scopes=(head.fields,))
        fields: dict[str, Any] = {"transport": config, **head.fields, "vq": queues.fields["vq"]}
        device_context = DeviceContext(limits=limits, path=(*path, "device"), version=context.version, common=fields)
        device = self.device_class.load(reader, device_context)
        if device is not None:
            fields["device"] = device
        tail = decode(self._virtio, reader, 1, limits=limits, path=path)
        return Record(version=context.version, fields=fields, subsections=tail.subsections)

    def encode(self, value: Any, context: CustomContext) -> bytes:
        path = context.path
        if not isinstance(value, Record):
            raise EncodeError(f"expected a virtio Record, got {type(value).__name__}", path=path)
        fields = value.fields
        missing = [name for name in ("transport", *COMMON_FIELDS, "vq") if name not in fields]
        if missing:
            raise EncodeError(f"virtio record lacks {', '.join(missing)}", path=path)
        config = fields["transport"]
        head = Record(version=1, fields={name: fields[name] for name in COMMON_FIELDS})
        device_context = DeviceContext(
            limits=context.limits, path=(*path, "device"), version=context.version, common=fields
        )
        parts = [
            self.transport.save_config(config, (*path, "transport")),
            encode(COMMON_HEAD, head, path=path),
            encode(_queues(self.transport, config), Record(version=1, fields={"vq": fields["vq"]}), path=path, scopes=(head.fields,)),
            self.device_class.save(fields.get("device"), device_context),
            encode(self._virtio, Record(version=1, subsections=value.subsections), path=path),
        ]
        return b"".join(parts)

    def value_description(self, value: Record) -> Description:
        """One description of a decoded ``virtio`` value's tree (transport, common fields, vq, device, subsections).

        It is for looking up the kind of a field inside the value (editing,
        ``vmstate edit``); the wire layout is ``encode``'s.
        """
        config = value.fields.get("transport")
        fields = [Field(name=f.name, kind=f.kind) for f in COMMON_HEAD.fields]
        if isinstance(config, Record):
            config_description = self.transport.config_description(config)
            if config_description is not None:
                fields.insert(0, Field(name="transport", kind=Struct(description=config_description)))
            fields += _queues(self.transport, config).fields
        part = getattr(self.device_class, "part_description", None)
        if callable(part) and isinstance(value.fields.get("device"), Record):
            fields.append(Field(name="device", kind=Struct(description=part(value.fields))))
        return Description(name="virtio", version=value.version, minimum_version=value.version, fields=tuple(fields),
                           subsections=self._virtio.subsections)

    def describe(self) -> dict[str, Any]:
        from vmstate.schema import description_to_json

        from .transport import PciTransport

        layouts = (
            [(False, True), (False, False)] if isinstance(self.transport, PciTransport) else [(True, False)]
        )
        return {
            "layout": "virtio_save: transport config, common, queues, device part, virtio subsections",
            "transport": self.transport.name,
            "common": description_to_json(COMMON_HEAD, _top=False),
            "queues": [
                description_to_json(queues_description(vring_align=a, vector=v), _top=False) for a, v in layouts
            ],
            "device": self.device_class.savevm_name,
            "device_part": self.device_class.describe(),
            "virtio": description_to_json(self._virtio, _top=False),
        }


def virtio_field(device_class: VirtioDeviceClass, transport: Transport) -> Description:
    """The section description QEMU 7.2 uses: one field ``virtio`` of the ``virtio`` info."""
    return Description(
        name=device_class.savevm_name,
        version=device_class.version,
        minimum_version=device_class.minimum_version,
        fields=(Field(name="virtio", kind=Custom(codec=VirtioCodec(device_class, transport), type_name="virtio")),),
    )


