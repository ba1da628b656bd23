"""Look at a device's rings in the guest RAM a stream carries.

A booted guest's stream holds both sides of every virtqueue: the device's
``last_avail_idx`` in its section and the guest's rings in RAM.  Reading
the rings needs the device's byte order (QEMU 2.2's point: a legacy device
of a little-endian ppc64 guest keeps its rings little-endian on a
big-endian target), so this is where ``device_endian`` meets real data.

Only pages that hold a ring are kept (two passes over the stream: the
device sections come after RAM), so memory does not grow with guest RAM.
The caller opens the stream: ``guest_memory`` takes its records.
"""

from __future__ import annotations

from typing import Iterable

import attrs

from streams.records import RamPage, RamZero, StreamRecord

from .access import GuestMemory
from .device import VirtIODevice
from .vring import Vring, avail_idx, used_idx

__all__ = ["MAIN_RAM_BASE", "RingView", "rings_of", "ring_pages", "guest_memory"]

#: guest-physical address of each machine's main RAM block (its offset 0)
MAIN_RAM_BASE = {"pc.ram": 0, "ppc_spapr.ram": 0, "mach-virt.ram": 0x4000_0000}
#: a legacy PCI ring's alignment (VIRTIO_PCI_VRING_ALIGN)
_PCI_ALIGN = 4096
_PAGE = 4096


@attrs.frozen
class RingView:
    """One queue's indices as the device saved them and as guest RAM holds them."""

    queue: int
    last_avail_idx: int
    avail_idx: int
    used_idx: int

    @property
    def in_flight(self) -> int:
        """Buffers the device took but has not returned (avail consumed minus used)."""
        return (self.last_avail_idx - self.used_idx) & 0xFFFF


def _rings(device: VirtIODevice) -> list[tuple[int, Vring]]:
    out = []
    for index, queue in enumerate(device.vqs):
        if queue.desc == 0:
            continue
        if queue.avail and queue.used:  # VERSION_1: addresses migrate in virtio/virtqueues
            ring = Vring(num=queue.num, desc=queue.desc, avail=queue.avail, used=queue.used)
        else:
            ring = Vring.legacy(queue.desc, queue.num, queue.align or _PCI_ALIGN)
        out.append((index, ring))
    return out


def ring_pages(devices: Iterable[VirtIODevice]) -> set[int]:
    """Guest page numbers that hold any avail or used ring of these devices."""
    pages: set[int] = set()
    for device in devices:
        for _index, ring in _rings(device):
            for start, length in ((ring.avail, 6 + 2 * ring.num), (ring.used, 6 + 8 * ring.num)):
                pages.update(range(start // _PAGE, (start + length - 1) // _PAGE + 1))
    return pages


def guest_memory(records: Iterable[StreamRecord], pages: set[int], *, size: int = 1 << 40) -> GuestMemory:
    """Guest RAM restricted to ``pages`` (page numbers), from a stream's RAM records (others are skipped)."""
    wanted: list[tuple[int, bytes]] = []
    for record in records:
        if isinstance(record, (RamPage, RamZero)) and record.block in MAIN_RAM_BASE:
            address = MAIN_RAM_BASE[record.block] + record.offset
            if address // _PAGE in pages:
                data = record.data if isinstance(record, RamPage) else bytes((record.fill,)) * _PAGE
                wanted.append((address, data))  # a page sent again later wins
    return GuestMemory.from_pages(wanted, size=size)


def rings_of(device: VirtIODevice, memory: GuestMemory) -> list[RingView]:
    """Each placed queue's saved index next to the ring indices in guest RAM."""
    return [
        RingView(
            queue=index,
            last_avail_idx=device.vqs[index].last_avail_idx,
            avail_idx=avail_idx(device, memory, ring),
            used_idx=used_idx(device, memory, ring),
        )
        for index, ring in _rings(device)
    ]


