"""Booted guests' rings in guest RAM agree with the device state only in the device's byte order."""

from __future__ import annotations

import attrs
import pytest

from devices.cpu import Endian
from devices.virtio.device import VirtIODevice
from devices.virtio.guest_ram import RingView, guest_memory, ring_pages, rings_of
from streams.files import open_stream
from streams.qemu.reader import StreamReader
from vmstate.edit import virtio_devices

BOOTED = [
    ("pseries-7.2-booted-ppc64le-legacy.mig.xz", Endian.LITTLE),  # the seed: LE guest, BE target
    ("pc-7.2-booted-virtio-legacy.mig.xz", Endian.LITTLE),
]


def _consistent(view: RingView, num: int) -> bool:
    """used <= last_avail <= avail, each step at most a ring's worth (indices wrap at 2^16)."""
    return (view.last_avail_idx - view.used_idx) & 0xFFFF <= num and (view.avail_idx - view.last_avail_idx) & 0xFFFF <= num


@pytest.mark.parametrize(("name", "endian"), BOOTED, ids=[b[0] for b in BOOTED])
def test_rings_in_ram_match_the_saved_indices(corpus_file, name: str, endian: Endian) -> None:  # type: ignore[no-untyped-def]
    path = corpus_file(name)
    with open_stream(path) as source:
        devices = [device for _idstr, device in virtio_devices(source)]
    assert devices and all(d.device_endian == endian for d in devices)
    with open_stream(path) as source:
        memory = guest_memory(StreamReader(source), ring_pages(devices))
    moved = 0
    for device in devices:
        views = rings_of(device, memory)
        assert views, f"{device.savevm_name}: no ring placed by the booted guest"
        for view in views:
            assert _consistent(view, device.vqs[view.queue].num), (device.savevm_name, view)
            moved += view.used_idx > 0
    assert moved >= 4  # the guest really used its devices


def test_the_opposite_byte_order_reads_garbage(corpus_file) -> None:  # type: ignore[no-untyped-def]
    path = corpus_file("pseries-7.2-booted-ppc64le-legacy.mig.xz")
    with open_stream(path) as source:
        devices = [device for _idstr, device in virtio_devices(source)]
    with open_stream(path) as source:
        memory = guest_memory(StreamReader(source), ring_pages(devices))
    # legacy devices of an LE guest on pseries: only device_endian tells the accessors
    assert all(device.guest_features >> 32 & 1 == 0 for device in devices)
    wrong: list[VirtIODevice] = [attrs.evolve(d, device_endian=Endian.BIG) for d in devices]
    broken = [v for d in wrong for v in rings_of(d, memory) if not _consistent(v, d.vqs[v.queue].num)]
    assert len(broken) >= 4
