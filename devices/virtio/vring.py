"""Split virtqueues in guest memory, read and written through the virtio accessors.

Every ring field (descriptor addr/len/flags/next, avail flags/idx/ring and
used_event, used flags/idx/elements and avail_event) is in device byte order;
the 2.2 series routed them all through virtio-access.h (hw/virtio/virtio.c).
The device side (``pop``/``push``) mirrors QEMU's virtqueue_pop/fill/flush
with their sanity checks; the driver side (``add_buffer``, ``get_used``) lets
tests play the guest.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs

from vmstate.errors import DescriptionError, EncodeError, MalformedError

from .access import (
    EndianSubject,
    GuestMemory,
    ldl_phys,
    ldq_phys,
    lduw_phys,
    stl_phys,
    stq_phys,
    stw_phys,
)

__all__ = [
    "DESC_SIZE",
    "VIRTIO_PCI_VRING_ALIGN",
    "VIRTIO_RING_F_EVENT_IDX",
    "VIRTQUEUE_MAX_NUM",
    "VRING_AVAIL_F_NO_INTERRUPT",
    "VRING_DESC_F_INDIRECT",
    "VRING_DESC_F_NEXT",
    "VRING_DESC_F_WRITE",
    "VRING_USED_F_NO_NOTIFY",
    "Descriptor",
    "Segment",
    "UsedElement",
    "DescriptorChain",
    "Vring",
    "VringError",
    "add_buffer",
    "add_indirect_buffer",
    "avail_event",
    "avail_flags",
    "avail_idx",
    "avail_ring",
    "get_used",
    "pending",
    "pop",
    "push",
    "read_descriptor",
    "set_avail_event",
    "used_event",
    "used_flags",
    "used_idx",
    "vring_need_event",
    "write_descriptor",
]

VRING_DESC_F_NEXT = 1
VRING_DESC_F_WRITE = 2
VRING_DESC_F_INDIRECT = 4
VRING_AVAIL_F_NO_INTERRUPT = 1
VRING_USED_F_NO_NOTIFY = 1
#: feature bit: used_event / avail_event are in use
VIRTIO_RING_F_EVENT_IDX = 29
#: legacy virtio-pci ring alignment (the guest gives a page frame number)
VIRTIO_PCI_VRING_ALIGN = 4096
#: the largest split-ring size the virtio spec allows
VIRTQUEUE_MAX_NUM = 32768
DESC_SIZE = 16

_U16 = 0xFFFF
_U32 = 0xFFFFFFFF
_U64 = (1 << 64) - 1


class VringError(MalformedError):
    """The guest left a ring QEMU would refuse (QEMU: virtio_error / exit)."""


def _u(bits: int) -> Callable[[Any, attrs.Attribute[int], int], None]:
    limit = (1 << bits) - 1

    def check(_instance: object, attribute: attrs.Attribute[int], value: int) -> None:
        if not 0 <= value <= limit:
            raise EncodeError(f"{attribute.name}={value} does not fit in {bits} bits")

    return check


@attrs.frozen(kw_only=True)
class Descriptor:
    """``struct vring_desc``: one buffer of guest memory."""

    addr: int = attrs.field(validator=_u(64))
    len: int = attrs.field(validator=_u(32))
    flags: int = attrs.field(default=0, validator=_u(16))
    next: int = attrs.field(default=0, validator=_u(16))

    @property
    def has_next(self) -> bool:
        return bool(self.flags & VRING_DESC_F_NEXT)

    @property
    def writable(self) -> bool:
        """Device-writable (an "in" buffer from the device's view)."""
        return bool(self.flags & VRING_DESC_F_WRITE)

    @property
    def indirect(self) -> bool:
        return bool(self.flags & VRING_DESC_F_INDIRECT)


def _check_num(_instance: object, _attribute: object, value: int) -> None:
    if not 1 <= value <= VIRTQUEUE_MAX_NUM or value & (value - 1):
        raise DescriptionError(f"ring size must be a power of two in 1..{VIRTQUEUE_MAX_NUM}, got {value}")


@attrs.frozen(kw_only=True)
class Vring:
    """Where a split ring lives: the guest-physical addresses of its three parts."""

    num: int = attrs.field(validator=_check_num)
    desc: int
    avail: int
    used: int

    @classmethod
    def legacy(cls, desc: int, num: int, align: int = VIRTIO_PCI_VRING_ALIGN) -> Vring:
        """The legacy contiguous layout derived from the descriptor table address.

        As QEMU's ``virtio_queue_update_rings``: avail follows the descriptor
        table; used starts at the next ``align`` boundary after
        ``avail.ring[num]`` (QEMU leaves used_event out of that sum; with
        page alignment the result is the same as the spec's vring_size).
        """
        if align <= 0 or align & (align - 1):
            raise DescriptionError(f"ring alignment must be a power of two, got {align}")
        _check_num(None, None, num)
        avail = desc + DESC_SIZE * num
        used = (avail + 4 + 2 * num + align - 1) & ~(align - 1)
        return cls(num=num, desc=desc, avail=avail, used=used)

    @property
    def end(self) -> int:
        """First address after the used ring (including avail_event)."""
        return self.used + 4 + 8 * self.num + 2

    # addresses of the individual fields
    def desc_addr(self, index: int, table: int | None = None) -> int:
        return (self.desc if table is None else table) + DESC_SIZE * index

    def avail_ring_addr(self, slot: int) -> int:
        return self.avail + 4 + 2 * slot

    def used_ring_addr(self, slot: int) -> int:
        return self.used + 4 + 8 * slot


@attrs.frozen(kw_only=True)
class Segment:
    """One guest buffer of a popped element."""

    addr: int
    len: int


@attrs.frozen(kw_only=True)
class DescriptorChain:
    """A popped descriptor chain (QEMU's VirtQueueElement, without the mapping)."""

    #: head descriptor index, returned to the driver in the used ring
    index: int
    #: device-readable buffers, in chain order
    out_sg: tuple[Segment, ...]
    #: device-writable buffers, in chain order
    in_sg: tuple[Segment, ...]

    @property
    def out_len(self) -> int:
        return sum(s.len for s in self.out_sg)

    @property
    def in_len(self) -> int:
        return sum(s.len for s in self.in_sg)


@attrs.frozen(kw_only=True)
class UsedElement:
    """``struct vring_used_elem``: a chain the device is done with."""

    id: int
    len: int


# -- descriptor table --------------------------------------------------------

def read_descriptor(subject: EndianSubject, memory: GuestMemory, table: int, index: int) -> Descriptor:
    """Read descriptor ``index`` of the table at ``table``."""
    base = table + DESC_SIZE * index
    return Descriptor(
        addr=ldq_phys(subject, memory, base),
        len=ldl_phys(subject, memory, base + 8),
        flags=lduw_phys(subject, memory, base + 12),
        next=lduw_phys(subject, memory, base + 14),
    )


def write_descriptor(subject: EndianSubject, memory: GuestMemory, table: int, index: int, desc: Descriptor) -> None:
    """Write descriptor ``index`` of the table at ``table`` (driver side)."""
    base = table + DESC_SIZE * index
    stq_phys(subject, memory, base, desc.addr)
    stl_phys(subject, memory, base + 8, desc.len)
    stw_phys(subject, memory, base + 12, desc.flags)
    stw_phys(subject, memory, base + 14, desc.next)


# -- avail and used ring fields ------------------------------------------------

def avail_flags(subject: EndianSubject, memory: GuestMemory, ring: Vring) -> int:
    return lduw_phys(subject, memory, ring.avail)


def avail_idx(subject: EndianSubject, memory: GuestMemory, ring: Vring) -> int:
    """The driver's free-running avail index (mod 2^16)."""
    return lduw_phys(subject, memory, ring.avail + 2)


def avail_ring(subject: EndianSubject, memory: GuestMemory, ring: Vring, slot: int) -> int:
    return lduw_phys(subject, memory, ring.avail_ring_addr(slot % ring.num))


def used_event(subject: EndianSubject, memory: GuestMemory, ring: Vring) -> int:
    """``avail->ring[num]``: the driver wants an interrupt past this used index."""
    return lduw_phys(subject, memory, ring.avail_ring_addr(ring.num))


def used_flags(subject: EndianSubject, memory: GuestMemory, ring: Vring) -> int:
    return lduw_phys(subject, memory, ring.used)


def used_idx(subject: EndianSubject, memory: GuestMemory, ring: Vring) -> int:
    """The device's free-running used index (mod 2^16)."""
    return lduw_phys(subject, memory, ring.used + 2)


def avail_event(subject: EndianSubject, memory: GuestMemory, ring: Vring) -> int:
    """``used->ring[num]``: the device wants a kick past this avail index."""
    return lduw_phys(subject, memory, ring.used_ring_addr(ring.num))


def set_avail_event(subject: EndianSubject, memory: GuestMemory, ring: Vring, value: int) -> None:
    stw_phys(subject, memory, ring.used_ring_addr(ring.num), value)


def vring_need_event(event_idx: int, new_idx: int, old_idx: int) -> bool:
    """Whether moving an index from ``old_idx`` to ``new_idx`` crossed ``event_idx``."""
    return (new_idx - event_idx - 1) & _U16 < (new_idx - old_idx) & _U16


# -- device side -----------------------------------------------------------------

def pending(subject: EndianSubject, memory: GuestMemory, ring: Vring, last_avail_idx: int) -> int:
    """How many chains the driver has made available since ``last_avail_idx``.

    More than ``num`` is impossible for a sane driver (QEMU: "Guest moved
    used index from %u to %u") and raises VringError.
    """
    current = avail_idx(subject, memory, ring)
    count = (current - last_avail_idx) & _U16
    if count > ring.num:
        raise VringError(f"guest moved avail index from {last_avail_idx} to {current} (ring size {ring.num})")
    return count


def pop(subject: EndianSubject, memory: GuestMemory, ring: Vring, last_avail_idx: int) -> DescriptorChain | None:
    """Take the chain at ``last_avail_idx``, or None if the ring is empty.

    The caller advances its ``last_avail_idx`` by one after a successful pop.
    Guards, all raising VringError: head or ``next`` out of the table, an
    indirect table whose length is not a multiple of 16, an indirect flag
    inside an indirect table, a device-readable buffer after a writable one,
    a buffer outside guest RAM, and a chain longer than ``num`` (a loop).
    """
    if not pending(subject, memory, ring, last_avail_idx):
        return None
    head = avail_ring(subject, memory, ring, last_avail_idx)
    if head >= ring.num:
        raise VringError(f"guest says descriptor {head} is available (ring size {ring.num})")
    table, size, index = ring.desc, ring.num, head
    desc = read_descriptor(subject, memory, table, index)
    if desc.indirect:
        if desc.len == 0 or desc.len % DESC_SIZE:
            raise VringError(f"invalid size {desc.len} for an indirect descriptor table")
        table, size, index = desc.addr, desc.len // DESC_SIZE, 0
        if table + desc.len > memory.size:
            raise VringError(f"indirect table {table:#x}+{desc.len} is outside guest RAM")
        desc = read_descriptor(subject, memory, table, index)
        nested = True
    else:
        nested = False
    out_sg: list[Segment] = []
    in_sg: list[Segment] = []
    count = 0
    while True:
        count += 1
        if count > ring.num:
            raise VringError(f"looped or overlong descriptor chain from head {head} (ring size {ring.num})")
        if desc.indirect:
            where = "inside an indirect table" if nested else "in the middle of a chain"
            raise VringError(f"indirect descriptor {index} {where}")
        if desc.addr + desc.len > memory.size:
            raise VringError(f"descriptor {index} buffer {desc.addr:#x}+{desc.len} is outside guest RAM")
        segment = Segment(addr=desc.addr, len=desc.len)
        if desc.writable:
            in_sg.append(segment)
        elif in_sg:
            raise VringError(f"device-readable descriptor {index} after a writable one")
        else:
            out_sg.append(segment)
        if not desc.has_next:
            break
        if desc.next >= size:
            raise VringError(f"descriptor {index} links to {desc.next}, past the table of {size}")
        index = desc.next
        desc = read_descriptor(subject, memory, table, index)
    return DescriptorChain(index=head, out_sg=tuple(out_sg), in_sg=tuple(in_sg))


def push(subject: EndianSubject, memory: GuestMemory, ring: Vring, head: int, length: int) -> int:
    """Return chain ``head`` to the driver with ``length`` bytes written; return the new used idx.

    Like QEMU 2.2's virtqueue_fill + virtqueue_flush for one element: the
    element goes to ``used->ring[used_idx % num]``, then ``used->idx`` is
    bumped (mod 2^16).  The used index is read back from guest memory.
    """
    if not 0 <= head < ring.num:
        raise EncodeError(f"descriptor head {head} is outside a ring of {ring.num}")
    if not 0 <= length <= _U32:
        raise EncodeError(f"used length {length} does not fit in 32 bits")
    idx = used_idx(subject, memory, ring)
    slot = ring.used_ring_addr(idx % ring.num)
    stl_phys(subject, memory, slot, head)
    stl_phys(subject, memory, slot + 4, length)
    new = (idx + 1) & _U16
    stw_phys(subject, memory, ring.used + 2, new)
    return new


# -- driver side (the guest) ---------------------------------------------------------

def _publish(subject: EndianSubject, memory: GuestMemory, ring: Vring, head: int) -> None:
    idx = avail_idx(subject, memory, ring)
    stw_phys(subject, memory, ring.avail_ring_addr(idx % ring.num), head)
    stw_phys(subject, memory, ring.avail + 2, (idx + 1) & _U16)


def _chain(out: Sequence[tuple[int, int]], in_: Sequence[tuple[int, int]], limit: int) -> list[tuple[int, int, int]]:
    buffers = [(a, n, 0) for a, n in out] + [(a, n, VRING_DESC_F_WRITE) for a, n in in_]
    if not 1 <= len(buffers) <= limit:
        raise EncodeError(f"a chain needs 1..{limit} buffers, got {len(buffers)}")
    return buffers


def add_buffer(
    subject: EndianSubject, memory: GuestMemory, ring: Vring,
    out: Sequence[tuple[int, int]], in_: Sequence[tuple[int, int]] = (), *, first_desc: int = 0,
) -> int:
    """Play the driver: chain ``out`` then ``in_`` buffers and make the chain available.

    Buffers are ``(guest address, length)``; they take descriptors
    ``first_desc``, ``first_desc + 1``, ... (mod num).  Returns the head index.
    """
    buffers = _chain(out, in_, ring.num)
    indices = [(first_desc + i) % ring.num for i in range(len(buffers))]
    for i, (addr, length, flags) in enumerate(buffers):
        last = i == len(buffers) - 1
        desc = Descriptor(
            addr=addr, len=length,
            flags=flags if last else flags | VRING_DESC_F_NEXT,
            next=0 if last else indices[i + 1],
        )
        write_descriptor(subject, memory, ring.desc, indices[i], desc)
    _publish(subject, memory, ring, indices[0])
    return indices[0]


def add_indirect_buffer(
    subject: EndianSubject, memory: GuestMemory, ring: Vring, table: int,
    out: Sequence[tuple[int, int]], in_: Sequence[tuple[int, int]] = (), *, desc_index: int = 0,
) -> int:
    """Play the driver with VIRTIO_RING_F_INDIRECT_DESC: one ring descriptor points at a table at ``table``."""
    buffers = _chain(out, in_, ring.num)
    for i, (addr, length, flags) in enumerate(buffers):
        last = i == len(buffers) - 1
        entry = Descriptor(addr=addr, len=length, flags=flags if last else flags | VRING_DESC_F_NEXT, next=0 if last else i + 1)
        write_descriptor(subject, memory, table, i, entry)
    head = Descriptor(addr=table, len=DESC_SIZE * len(buffers), flags=VRING_DESC_F_INDIRECT)
    write_descriptor(subject, memory, ring.desc, desc_index % ring.num, head)
    _publish(subject, memory, ring, desc_index % ring.num)
    return desc_index % ring.num


def get_used(subject: EndianSubject, memory: GuestMemory, ring: Vring, last_used_idx: int) -> UsedElement | None:
    """Play the driver: the used element at ``last_used_idx``, or None if the device has not got there."""
    if used_idx(subject, memory, ring) == last_used_idx & _U16:
        return None
    slot = ring.used_ring_addr(last_used_idx % ring.num)
    return UsedElement(id=ldl_phys(subject, memory, slot), len=ldl_phys(subject, memory, slot + 4))
