"""The transport-independent layout of ``virtio_save`` (hw/virtio/virtio.c).

After the transport's config come the common ``VirtIODevice`` fields and the
queues (count, then per queue: size, [alignment on buses with variable vring
alignment], descriptor table address, last_avail_idx, [transport's per-queue
state]).  Then the device's own part, then the ``virtio`` vmsd, which has no
fields: only the optional subsections below, each sent when QEMU's ``needed``
rule holds.  They come last so that a new one never moves an old field, which
is what let QEMU 2.2 add ``virtio/device_endian`` without a version bump.

Each subsection carries its 7.2 ``needed`` rule, a test of a ``VirtioState``
(the typed ``VirtIODevice``): saving a device derives its subsections from
these descriptions; decoding takes whatever subsections the stream has.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Protocol

from vmstate.description import Array, Description, Field, NeededTest, Struct
from vmstate.kinds import BOOL, UINT8, UINT16, UINT32, UINT64, named, vbuffer

from ..cpu import Endian, Target
from vmstate.typed import description_of

from .access import device_endian_needed
from .features import VIRTIO_F_RING_PACKED, VIRTIO_F_VERSION_1, has_feature
from .mmio import VirtioMmioExtraState
from .pci import VirtioPciExtraState

__all__ = [
    "VIRTIO_QUEUE_MAX",
    "COMMON_HEAD",
    "queue_description",
    "queues_description",
    "virtio_description",
    "SUBSECTION_NAMES",
    "NEEDED",
    "VirtioState",
    "VirtqueueState",
]

#: queues a 7.2 device can have; 2.2 allowed 64 (VIRTIO_PCI_QUEUE_MAX)
VIRTIO_QUEUE_MAX = 1024

#: the ``virtio`` vmsd's subsections in QEMU 7.2's declaration (= wire) order
SUBSECTION_NAMES = (
    "virtio/device_endian",
    "virtio/64bit_features",
    "virtio/virtqueues",
    "virtio/ringsize",
    "virtio/broken",
    "virtio/extra_state",
    "virtio/started",
    "virtio/packed_virtqueues",
    "virtio/disabled",
)


class VirtqueueState(Protocol):
    """What a ``needed`` rule reads of one queue (``VirtQueue``)."""

    @property
    def num(self) -> int: ...

    @property
    def num_default(self) -> int | None: ...


class VirtioState(Protocol):
    """What the ``needed`` rules read of a device (``VirtIODevice``)."""

    @property
    def target(self) -> Target: ...

    @property
    def device_endian(self) -> Endian: ...

    @property
    def guest_features(self) -> int: ...

    @property
    def host_features(self) -> int: ...

    @property
    def transport_extra_state(self) -> bool: ...

    @property
    def broken(self) -> bool: ...

    @property
    def started(self) -> bool: ...

    @property
    def disabled(self) -> bool: ...

    @property
    def vqs(self) -> Sequence[VirtqueueState]: ...


# QEMU 7.2's needed functions of vmstate_virtio (hw/virtio/virtio.c), in its words.


def _64bit_features_needed(vdev: VirtioState) -> bool:
    """``virtio_64bit_features_needed``: a host feature above bit 31."""
    return vdev.host_features >> 32 != 0


def _virtqueue_needed(vdev: VirtioState) -> bool:
    """``virtio_virtqueue_needed``: the host offers VIRTIO_F_VERSION_1."""
    return has_feature(vdev.host_features, VIRTIO_F_VERSION_1)


def _ringsize_needed(vdev: VirtioState) -> bool:
    """``virtio_ringsize_needed``: a queue's ``vring.num`` differs from ``num_default``.

    A queue whose default the stream never said (``None``) is taken as unchanged.
    """
    return any(q.num_default is not None and q.num != q.num_default for q in vdev.vqs)


def _broken_needed(vdev: VirtioState) -> bool:
    """``virtio_broken_needed``."""
    return vdev.broken


def _extra_state_needed(vdev: VirtioState) -> bool:
    """``virtio_extra_state_needed``: the transport's ``has_extra_state`` (pci ``migrate-extra``, mmio v2)."""
    return vdev.transport_extra_state


def _started_needed(vdev: VirtioState) -> bool:
    """``virtio_started_needed``."""
    return vdev.started


def _packed_virtqueue_needed(vdev: VirtioState) -> bool:
    """``virtio_packed_virtqueue_needed``: the host offers VIRTIO_F_RING_PACKED."""
    return has_feature(vdev.host_features, VIRTIO_F_RING_PACKED)


def _disabled_needed(vdev: VirtioState) -> bool:
    """``virtio_disabled_needed``."""
    return vdev.disabled


#: each ``virtio/...`` subsection's 7.2 ``needed`` rule (``virtio_device_endian_needed`` is devices.virtio.access's)
NEEDED: dict[str, NeededTest] = {
    "virtio/device_endian": device_endian_needed,
    "virtio/64bit_features": _64bit_features_needed,
    "virtio/virtqueues": _virtqueue_needed,
    "virtio/ringsize": _ringsize_needed,
    "virtio/broken": _broken_needed,
    "virtio/extra_state": _extra_state_needed,
    "virtio/started": _started_needed,
    "virtio/packed_virtqueues": _packed_virtqueue_needed,
    "virtio/disabled": _disabled_needed,
}


@lru_cache(maxsize=None)
def queue_description(*, vring_align: bool, vector: bool) -> Description:
    """One queue in the legacy layout; ``vector`` when the PCI proxy has MSI-X."""
    fields = [Field(name="num", kind=UINT32)]
    if vring_align:
        fields.append(Field(name="align", kind=UINT32))
    fields += [Field(name="desc", kind=UINT64), Field(name="last_avail_idx", kind=UINT16)]
    if vector:
        fields.append(Field(name="vector", kind=UINT16))
    return Description(name="virtqueue", version=1, minimum_version=1, fields=tuple(fields))


#: status, ISR, queue selector, low feature word, config space, queue count
COMMON_HEAD = Description(
    name="virtio common",
    version=1,
    minimum_version=1,
    fields=(
        Field(name="status", kind=UINT8),
        Field(name="isr", kind=UINT8),
        Field(name="queue_sel", kind=UINT16),
        # the high word travels in virtio/64bit_features
        Field(name="guest_features_lo", kind=UINT32),
        Field(name="config_len", kind=UINT32),
        Field(name="config", kind=vbuffer("config_len", type_name="virtio config")),
        Field(name="num_queues", kind=UINT32),
    ),
)


@lru_cache(maxsize=None)
def queues_description(*, vring_align: bool, vector: bool) -> Description:
    """The ``vq`` list, counted by the ``num_queues`` read before it."""
    queue = queue_description(vring_align=vring_align, vector=vector)
    return Description(
        name="virtio queues",
        version=1,
        minimum_version=1,
        fields=(Field(name="vq", kind=Array(element=Struct(description=queue), count_from="num_queues")),),
    )


def _queues(name: str, element: Description) -> Field:
    return Field(name=name, kind=Array(element=Struct(description=element), count=VIRTIO_QUEUE_MAX))


_RING_ADDRESSES = Description(
    name="virtqueue_state",
    version=1,
    minimum_version=1,
    fields=(Field(name="avail", kind=UINT64), Field(name="used", kind=UINT64)),
)
_RING_SIZE = Description(
    name="ringsize_state", version=1, minimum_version=1, fields=(Field(name="num_default", kind=UINT32),)
)
_PACKED_QUEUE = Description(
    name="packed_virtqueue_state",
    version=1,
    minimum_version=1,
    fields=(
        Field(name="last_avail_idx", kind=UINT16),
        Field(name="last_avail_wrap_counter", kind=BOOL),
        Field(name="used_idx", kind=UINT16),
        Field(name="used_wrap_counter", kind=BOOL),
        Field(name="inuse", kind=UINT32),
    ),
)


def _sub(name: str, *fields: Field) -> Description:
    return Description(name=name, version=1, minimum_version=1, fields=fields, needed=NEEDED[name])


@lru_cache(maxsize=None)
def virtio_description(transport: str) -> Description:
    """QEMU's ``vmstate_virtio`` for a ``"pci"`` or ``"mmio"`` transport.

    Only ``virtio/extra_state`` differs: it carries the transport's own vmsd;
    the ``needed`` rules are the same on both.  Decoding takes whatever
    subsections the stream has; saving a ``VirtIODevice`` asks each rule.
    """
    extra = description_of(VirtioPciExtraState if transport == "pci" else VirtioMmioExtraState)
    subsections = (
        _sub("virtio/device_endian", Field(name="device_endian", kind=named(UINT8, Endian))),
        _sub("virtio/64bit_features", Field(name="guest_features", kind=UINT64)),
        _sub("virtio/virtqueues", _queues("vq", _RING_ADDRESSES)),
        _sub("virtio/ringsize", _queues("vq", _RING_SIZE)),
        _sub("virtio/broken", Field(name="broken", kind=BOOL)),
        _sub("virtio/extra_state", Field(name="extra_state", kind=Struct(description=extra, version=1))),
        _sub("virtio/started", Field(name="started", kind=BOOL)),
        _sub("virtio/packed_virtqueues", _queues("vq", _PACKED_QUEUE)),
        _sub("virtio/disabled", Field(name="disabled", kind=BOOL)),
    )
    assert tuple(s.name for s in subsections) == SUBSECTION_NAMES == tuple(NEEDED)
    return Description(name="virtio", version=1, minimum_version=1, subsections=subsections)

