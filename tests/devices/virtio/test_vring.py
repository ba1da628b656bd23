"""Split virtqueues through the accessors: layout, driver/device round trips, guards."""

from __future__ import annotations

from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.cpu import AARCH64, PPC64, X86_64, Endian
from devices.virtio.access import EndianState, GuestMemory, stl_phys, stw_phys
from devices.virtio.vring import (
    DESC_SIZE,
    VRING_DESC_F_INDIRECT,
    VRING_DESC_F_NEXT,
    VRING_DESC_F_WRITE,
    Descriptor,
    Segment,
    Vring,
    VringError,
    add_buffer,
    add_indirect_buffer,
    avail_event,
    avail_flags,
    avail_idx,
    get_used,
    pending,
    pop,
    push,
    read_descriptor,
    set_avail_event,
    used_event,
    used_flags,
    used_idx,
    vring_need_event,
    write_descriptor,
)
from vmstate.errors import DescriptionError, EncodeError, MalformedError, VMStateError

SUBJECTS = {
    "ppc64-be": (EndianState.legacy(PPC64, Endian.BIG), True),
    "ppc64-le": (EndianState.legacy(PPC64, Endian.LITTLE), False),
    "aarch64-be": (EndianState.legacy(AARCH64, Endian.BIG), True),
    "x86": (EndianState.legacy(X86_64), False),
    "ppc64-modern": (EndianState.modern(PPC64), False),
}
subjects = pytest.mark.parametrize("subject, big", list(SUBJECTS.values()), ids=list(SUBJECTS))
BE = SUBJECTS["ppc64-be"][0]
LE = SUBJECTS["ppc64-le"][0]

RAM = 1 << 20
RING_AT = 0x10000


def make(num: int = 8) -> tuple[GuestMemory, Vring]:
    return GuestMemory(RAM), Vring.legacy(RING_AT, num)


# -- layout -------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "num, avail, used",
    [(256, 0x1000, 0x2000), (128, 0x800, 0x1000), (64, 0x400, 0x1000), (1024, 0x4000, 0x5000), (1, 0x10, 0x1000)],
)
def test_legacy_pci_layout(num: int, avail: int, used: int) -> None:
    ring = Vring.legacy(RING_AT, num)
    assert (ring.desc, ring.avail - RING_AT, ring.used - RING_AT) == (RING_AT, avail, used)
    assert ring.end == ring.used + 4 + 8 * num + 2


def test_legacy_mmio_layout_with_small_alignment() -> None:
    ring = Vring.legacy(0x4000, 8, align=64)
    assert ring.avail == 0x4000 + 128
    assert ring.used == 0x4000 + 192  # 128 + 4 + 16 = 148 rounded up to 64


@pytest.mark.parametrize("num", [0, 3, 100, 65536])
def test_ring_size_must_be_a_power_of_two(num: int) -> None:
    with pytest.raises(DescriptionError):
        Vring.legacy(0, num)


def test_alignment_must_be_a_power_of_two() -> None:
    with pytest.raises(DescriptionError):
        Vring.legacy(0, 8, align=3000)


# -- byte order of every ring field ------------------------------------------------------------

@subjects
def test_ring_fields_are_in_device_order(subject, big) -> None:
    memory, ring = make()
    head = add_buffer(subject, memory, ring, [(0x1122334455667788 & (RAM - 1), 0x100)], [(0x3000, 0x10)], first_desc=6)
    order: Literal["big", "little"] = "big" if big else "little"
    assert head == 6
    # avail: flags 0, idx 1, ring[0] = 6
    assert memory.read(ring.avail, 6) == bytes(2) + (1).to_bytes(2, order) + (6).to_bytes(2, order)
    # descriptor 6: addr, len, flags NEXT, next 7
    raw = memory.read(ring.desc + 6 * DESC_SIZE, DESC_SIZE)
    assert raw[0:8] == (0x1122334455667788 & (RAM - 1)).to_bytes(8, order)
    assert raw[8:12] == (0x100).to_bytes(4, order)
    assert raw[12:14] == VRING_DESC_F_NEXT.to_bytes(2, order)
    assert raw[14:16] == (7).to_bytes(2, order)
    assert memory.read(ring.desc + 7 * DESC_SIZE + 12, 2) == VRING_DESC_F_WRITE.to_bytes(2, order)
    new_used = push(subject, memory, ring, head, 0x10)
    assert new_used == 1
    assert memory.read(ring.used, 12) == bytes(2) + (1).to_bytes(2, order) + (6).to_bytes(4, order) + (0x10).to_bytes(4, order)


@subjects
def test_event_idx_fields(subject, big) -> None:
    memory, ring = make(16)
    order: Literal["big", "little"] = "big" if big else "little"
    stw_phys(subject, memory, ring.avail + 4 + 2 * 16, 0x1234)
    assert used_event(subject, memory, ring) == 0x1234
    set_avail_event(subject, memory, ring, 0xBEEF)
    assert avail_event(subject, memory, ring) == 0xBEEF
    assert memory.read(ring.used + 4 + 8 * 16, 2) == (0xBEEF).to_bytes(2, order)
    assert avail_flags(subject, memory, ring) == 0 and used_flags(subject, memory, ring) == 0


def test_vring_need_event() -> None:
    assert vring_need_event(event_idx=5, new_idx=6, old_idx=5)
    assert not vring_need_event(event_idx=7, new_idx=6, old_idx=5)
    assert vring_need_event(event_idx=0xFFFF, new_idx=1, old_idx=0xFFFE)  # wraps


# -- driver/device round trips -----------------------------------------------------------------

@subjects
def test_add_pop_push_get_used(subject, big) -> None:
    memory, ring = make()
    assert pop(subject, memory, ring, 0) is None
    head = add_buffer(subject, memory, ring, [(0x1000, 10), (0x2000, 20)], [(0x3000, 30)])
    assert pending(subject, memory, ring, 0) == 1
    element = pop(subject, memory, ring, 0)
    assert element is not None
    assert element.index == head == 0
    assert element.out_sg == (Segment(addr=0x1000, len=10), Segment(addr=0x2000, len=20))
    assert element.in_sg == (Segment(addr=0x3000, len=30),)
    assert (element.out_len, element.in_len) == (30, 30)
    assert pop(subject, memory, ring, 1) is None
    assert get_used(subject, memory, ring, 0) is None
    push(subject, memory, ring, element.index, 25)
    used = get_used(subject, memory, ring, 0)
    assert used is not None and (used.id, used.len) == (head, 25)
    assert get_used(subject, memory, ring, 1) is None


@subjects
def test_indirect_chain(subject, big) -> None:
    memory, ring = make()
    head = add_indirect_buffer(subject, memory, ring, 0x8000, [(0x1000, 16)], [(0x2000, 512), (0x2200, 1)], desc_index=3)
    table_entry = read_descriptor(subject, memory, ring.desc, 3)
    assert table_entry.indirect and table_entry.len == 3 * DESC_SIZE and table_entry.addr == 0x8000
    element = pop(subject, memory, ring, 0)
    assert element is not None and element.index == head == 3
    assert [s.addr for s in element.out_sg] == [0x1000]
    assert [s.addr for s in element.in_sg] == [0x2000, 0x2200]


@subjects
def test_indices_wrap_at_2_16(subject, big) -> None:
    memory, ring = make(4)
    # a long-running guest: both indices just below the wrap
    stw_phys(subject, memory, ring.avail + 2, 0xFFFE)
    stw_phys(subject, memory, ring.used + 2, 0xFFFE)
    last_avail = last_used = 0xFFFE
    for n in range(6):
        head = add_buffer(subject, memory, ring, [(0x1000 + n, 1)], first_desc=n)
        element = pop(subject, memory, ring, last_avail)
        assert element is not None and element.index == head
        last_avail = (last_avail + 1) & 0xFFFF
        push(subject, memory, ring, head, n)
        used = get_used(subject, memory, ring, last_used)
        assert used is not None and used.len == n
        last_used = (last_used + 1) & 0xFFFF
    assert avail_idx(subject, memory, ring) == used_idx(subject, memory, ring) == 4


#: up to 4 buffers a chain, so 4 direct chains fit the 16 descriptors without overlapping
chains = st.tuples(
    st.lists(st.tuples(st.integers(0, RAM - 4096), st.integers(0, 4096)), max_size=2),
    st.lists(st.tuples(st.integers(0, RAM - 4096), st.integers(0, 4096)), max_size=2),
).filter(lambda c: len(c[0]) + len(c[1]) >= 1)


@settings(max_examples=60)
@given(st.sampled_from(list(SUBJECTS.values())), st.lists(chains, min_size=1, max_size=4), st.integers(0, 7), st.booleans())
def test_chains_round_trip(case, batch, first, indirect) -> None:
    subject, _ = case
    memory = GuestMemory(RAM)
    ring = Vring.legacy(RING_AT, 16)
    heads = []
    for n, (out, in_) in enumerate(batch):
        if indirect:
            heads.append(add_indirect_buffer(subject, memory, ring, 0x20000 + n * 0x1000, out, in_, desc_index=first + n))
        else:
            heads.append(add_buffer(subject, memory, ring, out, in_, first_desc=first + 4 * n))
    for n, (out, in_) in enumerate(batch):
        element = pop(subject, memory, ring, n)
        assert element is not None and element.index == heads[n]
        assert [(s.addr, s.len) for s in element.out_sg] == list(out)
        assert [(s.addr, s.len) for s in element.in_sg] == list(in_)
        push(subject, memory, ring, element.index, n)
        used = get_used(subject, memory, ring, n)
        assert used is not None and (used.id, used.len) == (heads[n], n)
    assert pop(subject, memory, ring, len(batch)) is None


def test_driver_side_argument_checks() -> None:
    memory, ring = make(4)
    with pytest.raises(EncodeError):
        add_buffer(BE, memory, ring, [])
    with pytest.raises(EncodeError):
        add_buffer(BE, memory, ring, [(0, 1)] * 5)
    with pytest.raises(EncodeError):
        push(BE, memory, ring, 4, 0)
    with pytest.raises(EncodeError):
        push(BE, memory, ring, 0, 1 << 32)
    with pytest.raises(EncodeError):
        Descriptor(addr=1 << 64, len=0)


# -- guards ---------------------------------------------------------------------------------

def _publish(subject: EndianState, memory: GuestMemory, ring: Vring, head: int, idx: int = 1) -> None:
    stw_phys(subject, memory, ring.avail + 4, head)
    stw_phys(subject, memory, ring.avail + 2, idx)


def _desc(
    subject: EndianState, memory: GuestMemory, ring: Vring, index: int,
    addr: int = 0x1000, length: int = 8, flags: int = 0, next_: int = 0, table: int | None = None,
) -> None:
    desc = Descriptor(addr=addr, len=length, flags=flags, next=next_)
    write_descriptor(subject, memory, ring.desc if table is None else table, index, desc)


@subjects
def test_a_loop_is_caught(subject, big) -> None:
    memory, ring = make(4)
    _desc(subject, memory, ring, 0, flags=VRING_DESC_F_NEXT, next_=1)
    _desc(subject, memory, ring, 1, flags=VRING_DESC_F_NEXT, next_=0)
    _publish(subject, memory, ring, 0)
    with pytest.raises(VringError, match="looped"):
        pop(subject, memory, ring, 0)


def test_a_self_loop_in_an_indirect_table_is_caught() -> None:
    memory, ring = make(4)
    _desc(BE, memory, ring, 0, addr=0x8000, length=4 * DESC_SIZE, flags=VRING_DESC_F_INDIRECT)
    _desc(BE, memory, ring, 2, flags=VRING_DESC_F_NEXT, next_=2, table=0x8000)
    _desc(BE, memory, ring, 0, flags=VRING_DESC_F_NEXT, next_=2, table=0x8000)
    _publish(BE, memory, ring, 0)
    with pytest.raises(VringError, match="looped"):
        pop(BE, memory, ring, 0)


def _bad_head(s: EndianState, m: GuestMemory, r: Vring) -> None:
    _publish(s, m, r, 4)


def _bad_next(s: EndianState, m: GuestMemory, r: Vring) -> None:
    _desc(s, m, r, 0, flags=VRING_DESC_F_NEXT, next_=4)
    _publish(s, m, r, 0)


def _indirect_size(s: EndianState, m: GuestMemory, r: Vring) -> None:
    _desc(s, m, r, 0, addr=0x8000, length=24, flags=VRING_DESC_F_INDIRECT)
    _publish(s, m, r, 0)


def _indirect_empty(s: EndianState, m: GuestMemory, r: Vring) -> None:
    _desc(s, m, r, 0, addr=0x8000, length=0, flags=VRING_DESC_F_INDIRECT)
    _publish(s, m, r, 0)


def _nested_indirect(s: EndianState, m: GuestMemory, r: Vring) -> None:
    _desc(s, m, r, 0, addr=0x8000, length=32, flags=VRING_DESC_F_INDIRECT)
    _desc(s, m, r, 0, addr=0x9000, length=16, flags=VRING_DESC_F_INDIRECT, table=0x8000)
    _publish(s, m, r, 0)


def _readable_after_writable(s: EndianState, m: GuestMemory, r: Vring) -> None:
    _desc(s, m, r, 0, flags=VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, next_=1)
    _desc(s, m, r, 1)
    _publish(s, m, r, 0)


def _outside_ram(s: EndianState, m: GuestMemory, r: Vring) -> None:
    _desc(s, m, r, 0, addr=RAM - 4, length=8)
    _publish(s, m, r, 0)


def _avail_jump(s: EndianState, m: GuestMemory, r: Vring) -> None:
    _publish(s, m, r, 0, idx=5)


@pytest.mark.parametrize(
    "setup, message",
    [
        (_bad_head, "available"),
        (_bad_next, "past the table"),
        (_indirect_size, "indirect"),
        (_indirect_empty, "indirect"),
        (_nested_indirect, "inside an indirect table"),
        (_readable_after_writable, "after a writable"),
        (_outside_ram, "outside guest RAM"),
        (_avail_jump, "moved avail index"),
    ],
    ids=["head", "next", "indirect-size", "indirect-empty", "nested-indirect", "order", "ram", "avail-jump"],
)
@pytest.mark.parametrize("subject", [BE, LE], ids=["be", "le"])
def test_guards(subject, setup, message) -> None:
    memory, ring = make(4)
    setup(subject, memory, ring)
    with pytest.raises(VringError, match=message) as info:
        pop(subject, memory, ring, 0)
    assert isinstance(info.value, MalformedError) and isinstance(info.value, VMStateError)


def test_reading_a_ring_with_the_wrong_endianness_is_caught() -> None:
    """A LE guest driver, but the device still believes BE (device_endian not migrated)."""
    memory, ring = make(8)
    add_buffer(LE, memory, ring, [(0x1000, 8)])
    with pytest.raises(VringError, match="moved avail index from 0 to 256"):
        pop(BE, memory, ring, 0)
    element = pop(LE, memory, ring, 0)
    assert element is not None and element.out_sg == (Segment(addr=0x1000, len=8),)


def test_used_ring_written_by_a_be_device_is_garbage_to_a_le_driver() -> None:
    memory, ring = make(8)
    head = add_buffer(BE, memory, ring, [(0x1000, 8)], first_desc=1)
    push(BE, memory, ring, head, 0x40)
    assert used_idx(LE, memory, ring) == 0x0100
    stl_phys(LE, memory, ring.used + 4, 1)  # what a LE device would have written
    used = get_used(BE, memory, ring, 0)
    assert used is not None and used.id == 0x01000000
