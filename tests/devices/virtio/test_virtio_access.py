"""The accessor rule, the device_endian subsection rule, guest memory and the accessors."""

from __future__ import annotations

import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.cpu import (
    AARCH64,
    ARM,
    PPC64,
    S390X,
    X86_64,
    Endian,
    Ppc64Cpu,
    sample_device_endian,
)
from devices.virtio.access import (
    HOST_BIG_ENDIAN,
    VIRTIO_F_VERSION_1,
    DeviceEndianUnknownError,
    EndianState,
    GuestMemory,
    GuestMemoryError,
    device_endian_needed,
    is_big_endian,
    ldl_p,
    ldl_phys,
    ldq_p,
    ldq_phys,
    lduw_p,
    lduw_phys,
    stl_p,
    stl_phys,
    stq_p,
    stq_phys,
    stw_p,
    stw_phys,
    tswap16,
    tswap32,
    tswap64,
)
from vmstate.errors import (
    DecodeError,
    DescriptionError,
    EncodeError,
    LimitExceededError,
    TruncatedError,
    VMStateError,
)

V1 = 1 << VIRTIO_F_VERSION_1

#: one subject per interesting case: (subject, device big-endian?)
SUBJECTS = {
    "x86-legacy": (EndianState.legacy(X86_64), False),
    "ppc64-legacy-be": (EndianState.legacy(PPC64, Endian.BIG), True),
    "ppc64-legacy-le": (EndianState.legacy(PPC64, Endian.LITTLE), False),
    "aarch64-legacy-be": (EndianState.legacy(AARCH64, Endian.BIG), True),
    "aarch64-legacy-le": (EndianState.legacy(AARCH64), False),
    "arm-legacy-be": (EndianState.legacy(ARM, Endian.BIG), True),
    "s390x-legacy": (EndianState.legacy(S390X), True),
    "ppc64-modern": (EndianState.modern(PPC64), False),
    "s390x-modern": (EndianState.modern(S390X), False),
}
subjects = pytest.mark.parametrize("subject, big", list(SUBJECTS.values()), ids=list(SUBJECTS))
subject_st = st.sampled_from(list(SUBJECTS.values()))


# -- the accessor rule ------------------------------------------------------------------

@subjects
def test_is_big_endian(subject, big) -> None:
    assert is_big_endian(subject) is big


def test_version_1_is_little_whatever_device_endian_says() -> None:
    for target in (PPC64, AARCH64, S390X, X86_64):
        for endian in Endian:
            assert not is_big_endian(EndianState(target=target, device_endian=endian, guest_features=V1))


def test_only_bi_endian_targets_consult_device_endian() -> None:
    assert not is_big_endian(EndianState.legacy(X86_64, Endian.BIG))
    assert is_big_endian(EndianState.legacy(S390X, Endian.LITTLE))
    # and UNKNOWN is harmless where it is not consulted, as in QEMU
    assert not is_big_endian(EndianState.legacy(X86_64, Endian.UNKNOWN))


@pytest.mark.parametrize("target", [PPC64, AARCH64, ARM])
def test_unknown_device_endian_is_a_typed_error_on_bi_endian_targets(target) -> None:
    subject = EndianState.legacy(target, Endian.UNKNOWN)
    with pytest.raises(DeviceEndianUnknownError) as info:
        is_big_endian(subject)
    assert isinstance(info.value, VMStateError)
    memory = GuestMemory(4096)
    with pytest.raises(DeviceEndianUnknownError):
        lduw_phys(subject, memory, 0)


def test_other_feature_bits_do_not_count_as_version_1() -> None:
    subject = EndianState(target=PPC64, device_endian=Endian.BIG, guest_features=((1 << 64) - 1) & ~V1)
    assert is_big_endian(subject)
    with pytest.raises(DescriptionError):
        EndianState(target=PPC64, device_endian=Endian.BIG, guest_features=1 << 64)


# -- the virtio/device_endian subsection rule (QEMU 7.2) -------------------------------------

@pytest.mark.parametrize(
    "target, modern, endian, needed",
    [
        # legacy: needed iff device_endian != target default
        (X86_64, False, Endian.LITTLE, False),
        (X86_64, False, Endian.BIG, True),
        (PPC64, False, Endian.BIG, False),
        (PPC64, False, Endian.LITTLE, True),
        (AARCH64, False, Endian.LITTLE, False),
        (AARCH64, False, Endian.BIG, True),
        # VERSION_1 negotiated: needed iff device_endian != LITTLE, whatever the target default
        (X86_64, True, Endian.LITTLE, False),
        (X86_64, True, Endian.BIG, True),
        (PPC64, True, Endian.BIG, True),
        (PPC64, True, Endian.LITTLE, False),
        (AARCH64, True, Endian.LITTLE, False),
        (AARCH64, True, Endian.BIG, True),
    ],
)
def test_device_endian_needed(target, modern, endian, needed) -> None:
    subject = EndianState(target=target, device_endian=endian, guest_features=V1 if modern else 0)
    assert device_endian_needed(subject) is needed


def test_device_endian_needed_refuses_unknown() -> None:
    with pytest.raises(DeviceEndianUnknownError):
        device_endian_needed(EndianState.legacy(X86_64, Endian.UNKNOWN))


def test_ppc64le_guest_needs_the_subsection_after_a_vcpu_reset() -> None:
    endian = sample_device_endian(PPC64, Ppc64Cpu.little_endian())
    assert device_endian_needed(EndianState.legacy(PPC64, endian))
    assert not device_endian_needed(EndianState.legacy(PPC64, sample_device_endian(PPC64)))


# -- guest memory ------------------------------------------------------------------------------

def test_unwritten_memory_reads_zero_and_stays_sparse() -> None:
    memory = GuestMemory(4 << 30)
    assert memory.read(3 << 30, 16) == bytes(16)
    assert memory.page_count == 0
    memory.write((3 << 30) + 4094, b"\x01\x02\x03\x04")  # straddles a page boundary
    assert memory.page_count == 2
    assert memory.read((3 << 30) + 4092, 8) == b"\0\0\x01\x02\x03\x04\0\0"


def test_from_pages_and_pages_round_trip() -> None:
    pages = [(0x2000, bytes(range(256)) * 16), (0x0, b"\xaa" * 4096)]
    memory = GuestMemory.from_pages(pages, size=0x10000)
    assert list(memory.pages()) == sorted(pages)
    assert memory.read(0x2000 + 255, 2) == b"\xff\x00"
    assert GuestMemory.from_pages(memory.pages(), size=0x10000).read(0, 0x3000) == memory.read(0, 0x3000)


@pytest.mark.parametrize("address, length", [(0x10000, 1), (0xFFFF, 2), (-1, 1), (0, 0x10001), (1 << 70, 1)])
def test_out_of_range_accesses_are_typed_errors(address: int, length: int) -> None:
    memory = GuestMemory(0x10000)
    with pytest.raises(GuestMemoryError) as info:
        memory.read(address, length)
    assert isinstance(info.value, DecodeError) and isinstance(info.value, VMStateError)
    assert info.value.address == address
    with pytest.raises(GuestMemoryError):
        memory.write(address, bytes(length))
    assert memory.page_count == 0


def test_an_access_past_max_access_is_refused_before_allocating() -> None:
    memory = GuestMemory(1 << 40, max_access=1 << 20)
    with pytest.raises(LimitExceededError) as info:
        memory.read(0, 1 << 39)  # would be 512 GiB
    assert "max_access" in str(info.value)
    with pytest.raises(GuestMemoryError):
        memory.read(0, -1)


def test_memory_configuration_errors() -> None:
    with pytest.raises(DescriptionError):
        GuestMemory(4096, page_size=3000)
    with pytest.raises(DescriptionError):
        GuestMemory(-1)


@given(st.lists(st.tuples(st.integers(0, 3 * 512 - 1), st.binary(min_size=0, max_size=700)), max_size=12))
def test_memory_behaves_like_a_flat_bytearray(writes) -> None:
    size = 3 * 512
    memory = GuestMemory(size, page_size=512)
    model = bytearray(size)
    for address, data in writes:
        data = data[: size - address]
        memory.write(address, data)
        model[address : address + len(data)] = data
    assert memory.read(0, size) == bytes(model)


# -- accessors -----------------------------------------------------------------------------

WIDTHS = [(2, lduw_phys, stw_phys, lduw_p, stw_p), (4, ldl_phys, stl_phys, ldl_p, stl_p), (8, ldq_phys, stq_phys, ldq_p, stq_p)]


@subjects
def test_device_order_bytes_in_memory(subject, big) -> None:
    memory = GuestMemory(0x1000)
    stw_phys(subject, memory, 0x10, 0x1122)
    stl_phys(subject, memory, 0x20, 0x11223344)
    stq_phys(subject, memory, 0x30, 0x1122334455667788)
    if big:  # most significant byte first
        assert memory.read(0x10, 2) == bytes.fromhex("1122")
        assert memory.read(0x20, 4) == bytes.fromhex("11223344")
        assert memory.read(0x30, 8) == bytes.fromhex("1122334455667788")
    else:
        assert memory.read(0x10, 2) == bytes.fromhex("2211")
        assert memory.read(0x20, 4) == bytes.fromhex("44332211")
        assert memory.read(0x30, 8) == bytes.fromhex("8877665544332211")


@given(subject_st, st.sampled_from(WIDTHS), st.data())
def test_phys_store_load_round_trip_and_byte_order(case, width_ops, data) -> None:
    subject, big = case
    width, load, store, _, _ = width_ops
    value = data.draw(st.integers(0, (1 << (8 * width)) - 1))
    address = data.draw(st.integers(0, 0x2000 - width))
    memory = GuestMemory(0x2000, page_size=1024)
    store(subject, memory, address, value)
    assert load(subject, memory, address) == value
    assert memory.read(address, width) == value.to_bytes(width, "big" if big else "little")


@given(st.sampled_from(WIDTHS), st.data())
def test_a_device_of_the_other_order_sees_the_value_swapped(width_ops, data) -> None:
    width, load, store, _, _ = width_ops
    value = data.draw(st.integers(0, (1 << (8 * width)) - 1))
    memory = GuestMemory(64)
    store(SUBJECTS["ppc64-legacy-be"][0], memory, 8, value)
    swapped = int.from_bytes(value.to_bytes(width, "big"), "little")
    assert load(SUBJECTS["ppc64-legacy-le"][0], memory, 8) == swapped


@given(subject_st, st.sampled_from(WIDTHS), st.data())
def test_pointer_store_load_round_trip(case, width_ops, data) -> None:
    subject, big = case
    width, _, _, load, store = width_ops
    value = data.draw(st.integers(0, (1 << (8 * width)) - 1))
    offset = data.draw(st.integers(0, 16))
    buf = bytearray(offset + width + 3)
    store(subject, buf, offset, value)
    assert load(subject, bytes(buf), offset) == value
    assert bytes(buf[offset : offset + width]) == value.to_bytes(width, "big" if big else "little")
    assert buf[:offset] == bytes(offset) and buf[offset + width :] == bytes(3)


@pytest.mark.parametrize("width, _l, _s, load, store", WIDTHS)
def test_pointer_bounds_and_values(width, _l, _s, load, store) -> None:
    subject = SUBJECTS["ppc64-legacy-be"][0]
    with pytest.raises(TruncatedError):
        load(subject, bytes(width - 1))
    with pytest.raises(TruncatedError):
        load(subject, bytes(width), 1)
    with pytest.raises(EncodeError):
        store(subject, bytearray(width), 1, 0)
    with pytest.raises(EncodeError):
        store(subject, bytearray(width), 0, 1 << (8 * width))
    with pytest.raises(EncodeError):
        store(subject, bytearray(width), 0, -1)


def test_phys_store_rejects_values_that_do_not_fit() -> None:
    memory = GuestMemory(64)
    with pytest.raises(EncodeError):
        stw_phys(SUBJECTS["x86-legacy"][0], memory, 0, 0x10000)
    assert memory.page_count == 0


# -- tswap ------------------------------------------------------------------------------------

@pytest.mark.parametrize("host_big", [False, True], ids=["le-host", "be-host"])
@subjects
def test_tswap_swaps_only_across_orders(subject, big, host_big) -> None:
    same = big == host_big
    assert tswap16(subject, 0x1122, host_big_endian=host_big) == (0x1122 if same else 0x2211)
    assert tswap32(subject, 0x11223344, host_big_endian=host_big) == (0x11223344 if same else 0x44332211)
    expected64 = 0x1122334455667788 if same else 0x8877665544332211
    assert tswap64(subject, 0x1122334455667788, host_big_endian=host_big) == expected64


@given(subject_st, st.booleans(), st.sampled_from([(2, tswap16), (4, tswap32), (8, tswap64)]), st.data())
def test_tswap_gives_device_order_bytes_in_host_memory(case, host_big, width_swap, data) -> None:
    subject, big = case
    width, swap = width_swap
    value = data.draw(st.integers(0, (1 << (8 * width)) - 1))
    converted = swap(subject, value, host_big_endian=host_big)
    # what the host stores natively is what the device expects to find
    host_order = "big" if host_big else "little"
    assert converted.to_bytes(width, host_order) == value.to_bytes(width, "big" if big else "little")
    assert swap(subject, converted, host_big_endian=host_big) == value


def test_tswap_defaults_to_this_host() -> None:
    assert HOST_BIG_ENDIAN is (sys.byteorder == "big")
    subject = SUBJECTS["ppc64-legacy-be"][0]
    assert tswap32(subject, 0x01020304) == tswap32(subject, 0x01020304, host_big_endian=HOST_BIG_ENDIAN)
    with pytest.raises(EncodeError):
        tswap16(subject, 1 << 16)


def test_guest_memory_errors_carry_address_and_length() -> None:
    with pytest.raises(LimitExceededError) as big:
        GuestMemory(1 << 40, max_access=1 << 20).read(0x1000, 1 << 21)
    assert (big.value.address, big.value.length) == (0x1000, 1 << 21)
    with pytest.raises(TruncatedError) as short:
        lduw_p(EndianState(target=X86_64, device_endian=Endian.LITTLE, guest_features=V1), b"\x01\x02\x03", 2)
    assert (short.value.offset, short.value.message) == (2, "expected 2 bytes, got 1")
