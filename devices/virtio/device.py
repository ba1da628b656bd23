"""``VirtIODevice``: a virtio section as a device object, with QEMU's subsection rules.

Decoding keeps whatever the stream holds (a ``Record``).  This class is the
model a user edits: it knows the target, applies QEMU's load rules
(``device_endian`` defaults to the target's when its subsection is absent;
the 64-bit feature word replaces the 32-bit one when present) and, on save,
decides each ``virtio/...`` subsection with QEMU 7.2's ``needed`` rule
declared on its description (``devices.virtio.common``), so
that changing ``device_endian`` to a non-default value is what makes the
``virtio/device_endian`` subsection appear.

What a stream cannot say (the features the device *offers*, whether the
PCI proxy migrates extra state) is inferred from which subsections it
carries, so an unchanged device saves back to the same bytes.
"""

from __future__ import annotations

import copy
import itertools
from typing import Any, Protocol

import attrs

from vmstate.description import Array, Custom, Description, Int, Record, Struct
from vmstate.errors import EncodeError

from ..cpu import Cpu, Endian, Target, sample_device_endian
from .common import virtio_description
from .features import VIRTIO_F_RING_PACKED, VIRTIO_F_RING_RESET, VIRTIO_F_VERSION_1
from .parts import DescribedPart
from .save_load import COMMON_FIELDS, VirtioCodec, VirtioDeviceClass
from .sections import DEVICE_CLASSES

__all__ = ["VirtIODevice", "VirtQueue", "VIRTIO_NO_VECTOR", "DecodedSection", "VirtioSection", "virtio_section_of"]

VIRTIO_NO_VECTOR = 0xFFFF
_LOW_WORD = (1 << 32) - 1


@attrs.define
class VirtQueue:
    """One queue: what the legacy layout saves plus the subsections' per-queue values."""

    num: int
    desc: int = 0
    last_avail_idx: int = 0
    align: int | None = None
    vector: int | None = None
    #: from virtio/virtqueues (VERSION_1 devices); legacy rings derive them from desc
    avail: int = 0
    used: int = 0
    #: from virtio/ringsize; the size the device was created with
    num_default: int | None = None


@attrs.define
class VirtIODevice:
    """One virtio device section, as QEMU's ``VirtIODevice`` plus its transport and device part."""

    savevm_name: str
    target: Target
    record: Record = attrs.field(repr=False)
    device_endian: Endian
    guest_features: int
    host_features: int
    #: the transport migrates extra state (virtio-pci ``migrate-extra``, virtio-mmio v2)
    transport_extra_state: bool
    broken: bool = False
    started: bool = False
    disabled: bool = False
    vqs: list[VirtQueue] = attrs.Factory(list)

    # ----------------------------------------------------------- loading

    @classmethod
    def from_record(cls, savevm_name: str, record: Record, target: Target) -> "VirtIODevice":
        """Apply QEMU's load rules to a decoded ``virtio`` field."""
        subs = record.subsections
        fields = record.fields
        # virtio_load: device_endian is poisoned, then set by the subsection or the default
        endian_sub = subs.get("virtio/device_endian")
        device_endian = Endian(endian_sub.fields["device_endian"]) if endian_sub else target.default_endian
        features_sub = subs.get("virtio/64bit_features")
        guest_features = features_sub.fields["guest_features"] if features_sub else fields["guest_features_lo"]
        host_features = guest_features
        if features_sub is not None and guest_features >> 32 == 0:
            host_features |= 1 << VIRTIO_F_RING_RESET  # 7.2's default high feature
        if "virtio/virtqueues" in subs:
            host_features |= 1 << VIRTIO_F_VERSION_1
        if "virtio/packed_virtqueues" in subs:
            host_features |= 1 << VIRTIO_F_RING_PACKED
        vqs = [
            VirtQueue(
                num=q.fields["num"],
                desc=q.fields["desc"],
                last_avail_idx=q.fields["last_avail_idx"],
                align=q.fields.get("align"),
                vector=q.fields.get("vector"),
            )
            for q in fields["vq"]
        ]
        if "virtio/virtqueues" in subs:
            for queue, ring in zip(vqs, subs["virtio/virtqueues"].fields["vq"]):
                queue.avail, queue.used = ring.fields["avail"], ring.fields["used"]
        if "virtio/ringsize" in subs:
            for queue, size in zip(vqs, subs["virtio/ringsize"].fields["vq"]):
                queue.num_default = size.fields["num_default"]

        def flag(name: str, key: str) -> bool:
            return bool(subs[name].fields[key]) if name in subs else False

        return cls(
            savevm_name=savevm_name,
            target=target,
            record=copy.deepcopy(record),
            device_endian=device_endian,
            guest_features=guest_features,
            host_features=host_features,
            transport_extra_state="virtio/extra_state" in subs,
            broken=flag("virtio/broken", "broken"),
            started=flag("virtio/started", "started"),
            disabled=flag("virtio/disabled", "disabled"),
            vqs=vqs,
        )

    # ------------------------------------------------------ common fields

    @property
    def status(self) -> int:
        """The device status byte the guest driver wrote (``VIRTIO_CONFIG_S_*``)."""
        return int(self.record.fields["status"])

    @status.setter
    def status(self, value: int) -> None:
        self.record.fields["status"] = value

    @property
    def config(self) -> bytes:
        return bytes(self.record.fields["config"])

    @property
    def device(self) -> Record | None:
        """The device class's own part (e.g. virtio-net's mac, status, ...), if it has one."""
        return self.record.fields.get("device")

    @property
    def part_class(self) -> type | None:
        """The state class of the device's own part (virtio-net's ``VirtIONet``), None if it has none."""
        device_class = DEVICE_CLASSES.get(self.savevm_name)
        if isinstance(device_class, DescribedPart):
            return device_class.description({}).cls
        return None

    # ------------------------------------------------------ behaviour

    def reset(self, cpu: Cpu | None = None) -> None:
        """QEMU's ``virtio_reset``: device_endian from the resetting CPU, else the target default."""
        self.device_endian = sample_device_endian(self.target, cpu)
        self.guest_features = 0
        self.started = False
        self.broken = False
        fields = self.record.fields
        fields.update(status=0, isr=0, queue_sel=0)
        for queue in self.vqs:
            queue.desc = queue.avail = queue.used = queue.last_avail_idx = 0
            if queue.vector is not None:
                queue.vector = VIRTIO_NO_VECTOR
            if queue.num_default is not None:
                queue.num = queue.num_default

    def set_device_endian(self, endian: Endian) -> None:
        """Change ``device_endian``, and with it the device-part fields QEMU writes in the device's byte order.

        virtio-serial fills its config space (cols, rows, max_nr_ports) with
        ``virtio_tswap`` before writing it big-endian, so on a little-endian
        host those fields are byte-swapped for a big-endian device: after a
        flip they are swapped again, keeping the values they stand for.
        """
        old, self.device_endian = self.device_endian, endian
        flips = {old, endian} == {Endian.LITTLE, Endian.BIG}
        part = DEVICE_CLASSES.get(self.savevm_name)
        names = getattr(part, "device_order_fields", ())
        device = self.device
        if not flips or not names or device is None or not isinstance(part, DescribedPart):
            return
        widths = {f.name: f.kind.width for f in part.part_description(self.record.fields).fields
                  if isinstance(f.kind, Int)}
        for name in names:
            if name in device.fields and name in widths:
                device.fields[name] = int.from_bytes(int(device.fields[name]).to_bytes(widths[name], "little"), "big")

    # ------------------------------------------------------ saving

    def subsections_needed(self) -> list[str]:
        """The ``virtio/...`` subsections QEMU 7.2 would write for this state, in order.

        Each is the ``needed`` rule on its description (``devices.virtio.common``);
        the rules do not depend on the transport.
        """
        return [sub.name for sub in _SUBSECTIONS if sub.needed is not None and sub.needed(self)]

    def to_record(self) -> Record:
        """The ``virtio`` field value QEMU would save for this state."""
        if self.device_endian == Endian.UNKNOWN:
            raise EncodeError("device_endian is UNKNOWN: QEMU asserts it is set before saving")
        record = copy.deepcopy(self.record)
        fields = record.fields
        fields["guest_features_lo"] = self.guest_features & _LOW_WORD
        fields["num_queues"] = len(self.vqs)
        fields["vq"] = [_queue_record(queue, wire) for queue, wire in
                        itertools.zip_longest(self.vqs, fields["vq"][: len(self.vqs)])]
        old = record.subsections
        subsections: dict[str, Record] = {}
        for name in self.subsections_needed():
            if name not in _KEPT:
                subsections[name] = self._subsection(_SUBSECTION[name])
            elif name in old:
                subsections[name] = old[name]
            else:
                raise EncodeError(f"{name} is needed but this device has no state for it")
        record.subsections = subsections
        missing = [name for name in COMMON_FIELDS if name not in fields]
        if missing:
            raise EncodeError(f"virtio record lacks {', '.join(missing)}")
        return record

    def _subsection(self, description: Description) -> Record:
        """A subsection's record from the attributes its fields name (a queue array from ``vqs``)."""
        values: dict[str, Any] = {}
        for f in description.fields:
            if isinstance(f.kind, Array):
                assert isinstance(f.kind.element, Struct) and f.kind.count is not None
                element = f.kind.element.description
                queues = [_wire_values(element, q) for q in self.vqs]
                queues += [_wire_values(element, None) for _ in range(f.kind.count - len(self.vqs))]
                values[f.name] = [Record(version=1, fields=q) for q in queues]
            else:
                values[f.name] = _wire_value(getattr(self, f.name))
        return Record(version=description.version, fields=values)


def _queue_record(queue: VirtQueue, wire: Record | None) -> Record:
    """A queue as the common part saves it: the record it was read from, updated (a new queue gets one)."""
    if wire is None:
        wire = Record(version=1, fields={"num": 0, "desc": 0, "last_avail_idx": 0})
        for name in ("align", "vector"):
            if getattr(queue, name) is not None:
                wire.fields[name] = 0
    wire.fields.update(num=queue.num, desc=queue.desc, last_avail_idx=queue.last_avail_idx)
    for name in ("align", "vector"):
        value = getattr(queue, name)
        if value is not None and name in wire.fields:
            wire.fields[name] = value
    return wire


def _wire_value(value: Any) -> Any:
    """A device attribute as a record holds it (an ``Endian`` or a bool as its number, ``None`` as 0)."""
    if value is None:
        return 0
    return int(value) if isinstance(value, int) else value  # a bool as the 0/1 a decoded record holds


def _wire_values(description: Description, queue: VirtQueue | None) -> dict[str, Any]:
    """One queue's fields of a per-queue subsection; a queue the device does not have is zeros."""
    return {f.name: 0 if queue is None else _wire_value(getattr(queue, f.name)) for f in description.fields}


#: the ``virtio`` vmsd's subsections; the rules and layouts are the same on every transport
_SUBSECTIONS = virtio_description("pci").subsections
_SUBSECTION = {sub.name: sub for sub in _SUBSECTIONS}
#: state the device model does not hold: written again as received (transport extra state, packed queue state)
_KEPT = frozenset({"virtio/extra_state", "virtio/packed_virtqueues"})


class DecodedSection(Protocol):
    """A section decoded by a description (the stream model's ``DeviceState``)."""

    @property
    def description(self) -> Description: ...

    @property
    def record(self) -> Record: ...


@attrs.frozen
class VirtioSection:
    """A virtio device section our description decoded: its device class and its ``virtio`` field."""

    device_class: VirtioDeviceClass
    #: the section's ``virtio`` field as decoded
    value: Record

    @property
    def savevm_name(self) -> str:
        return self.device_class.savevm_name

    def device(self, target: Target) -> VirtIODevice:
        """The typed device, with QEMU's load rules for ``target``."""
        return VirtIODevice.from_record(self.savevm_name, self.value, target)


def virtio_section_of(section: DecodedSection) -> VirtioSection | None:
    """The virtio view of a decoded section; None unless our ``virtio`` field decoded it."""
    fields = section.description.fields
    if not fields or fields[0].name != "virtio" or not isinstance(fields[0].kind, Custom):
        return None
    codec = fields[0].kind.codec
    value = section.record.fields.get("virtio")
    if not isinstance(codec, VirtioCodec) or not isinstance(value, Record):
        return None
    return VirtioSection(device_class=codec.device_class, value=value)
