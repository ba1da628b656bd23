"""Targets, CPU endian hooks, and the device_endian sampled at reset."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.cpu import (
    AARCH64,
    ARM,
    CPSR_E,
    MSR_LE,
    PPC64,
    S390X,
    SCTLR_E0E,
    SCTLR_EE,
    TARGETS,
    X86_64,
    ArmCpu,
    Cpu,
    Endian,
    Ppc64Cpu,
    X86Cpu,
    sample_device_endian,
)
from vmstate.errors import DescriptionError, VMStateError

u64 = st.integers(0, (1 << 64) - 1)


def test_endian_wire_values() -> None:
    assert (Endian.UNKNOWN, Endian.LITTLE, Endian.BIG) == (0, 1, 2)
    assert Endian.of(True) is Endian.BIG and Endian.of(False) is Endian.LITTLE


@pytest.mark.parametrize(
    "target, big, bi",
    [(X86_64, False, False), (PPC64, True, True), (AARCH64, False, True), (ARM, False, True), (S390X, True, False)],
)
def test_targets(target, big, bi) -> None:
    assert target.big_endian is big
    assert target.bi_endian is bi
    assert target.default_endian == (Endian.BIG if big else Endian.LITTLE)
    assert TARGETS[target.name] is target


def test_targets_are_frozen() -> None:
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        PPC64.big_endian = False  # type: ignore[misc]


def test_x86_is_always_little() -> None:
    cpu = X86Cpu()
    assert isinstance(cpu, Cpu)
    assert cpu.target is X86_64
    assert cpu.virtio_is_big_endian() is False


@given(u64)
def test_ppc64_endianness_is_not_msr_le(msr: int) -> None:
    cpu = Ppc64Cpu(msr=msr)
    assert cpu.virtio_is_big_endian() is (msr & 1 == 0)


def test_ppc64_constructors() -> None:
    assert Ppc64Cpu.big_endian().virtio_is_big_endian()
    assert not Ppc64Cpu.little_endian().virtio_is_big_endian()
    assert Ppc64Cpu.little_endian().msr == MSR_LE
    assert isinstance(Ppc64Cpu(), Cpu)


@given(u64, st.booleans())
def test_ppc64_switch_at_run_time_keeps_other_msr_bits(msr: int, big: bool) -> None:
    cpu = Ppc64Cpu(msr=msr)
    switched = cpu.with_data_endian(big)
    assert switched.virtio_is_big_endian() is big
    assert switched.msr & ~MSR_LE == msr & ~MSR_LE
    assert cpu.msr == msr  # the old instance is untouched


def test_ppc64_rejects_oversized_msr() -> None:
    with pytest.raises(DescriptionError):
        Ppc64Cpu(msr=1 << 64)


@given(u64)
def test_aarch32_uses_cpsr_e(cpsr: int) -> None:
    cpu = ArmCpu(target=ARM, aarch64=False, el=0, cpsr=cpsr)
    assert cpu.virtio_is_big_endian() is bool(cpsr & CPSR_E)


@given(st.integers(0, 3), st.tuples(u64, u64, u64))
def test_aarch64_uses_e0e_at_el0_and_ee_of_the_current_el(el: int, sctlr: tuple[int, int, int]) -> None:
    cpu = ArmCpu(el=el, sctlr=sctlr)
    if el == 0:
        expected = bool(sctlr[0] & SCTLR_E0E)
    else:
        expected = bool(sctlr[el - 1] & SCTLR_EE)
    assert cpu.virtio_is_big_endian() is expected


def test_aarch64_bits_do_not_leak_between_levels() -> None:
    # EE set at EL1 says nothing about EL0 data, nor about EL2
    ee_el1 = ArmCpu(el=1, sctlr=(SCTLR_EE, 0, 0))
    assert ee_el1.virtio_is_big_endian()
    assert not ee_el1.with_el(0).virtio_is_big_endian()
    assert not ee_el1.with_el(2).virtio_is_big_endian()
    e0e_el1 = ArmCpu(el=1, sctlr=(SCTLR_E0E, 0, 0))
    assert not e0e_el1.virtio_is_big_endian()
    assert e0e_el1.with_el(0).virtio_is_big_endian()
    # the cpsr E bit does not matter in AArch64 state
    assert not ArmCpu(el=1, cpsr=CPSR_E).virtio_is_big_endian()


@pytest.mark.parametrize("el", [0, 1, 2, 3])
@pytest.mark.parametrize("big", [False, True])
def test_arm_switch_at_run_time(el: int, big: bool) -> None:
    cpu = ArmCpu.at_el(el, big_endian=not big)
    assert cpu.virtio_is_big_endian() is (not big)
    assert cpu.with_data_endian(big).virtio_is_big_endian() is big
    assert cpu.virtio_is_big_endian() is (not big)


@pytest.mark.parametrize("big", [False, True])
def test_aarch32_constructor_and_switch(big: bool) -> None:
    cpu = ArmCpu.aarch32(big)
    assert cpu.target is ARM
    assert cpu.virtio_is_big_endian() is big
    assert cpu.with_data_endian(not big).virtio_is_big_endian() is (not big)
    # an AArch32 CPU may also run under the aarch64 binary
    assert ArmCpu.aarch32(big, target=AARCH64).virtio_is_big_endian() is big


def test_arm_validation() -> None:
    with pytest.raises(DescriptionError):
        ArmCpu(el=4)
    with pytest.raises(DescriptionError):
        ArmCpu(target=ARM, aarch64=True)
    with pytest.raises(DescriptionError):
        ArmCpu(target=PPC64, aarch64=False)
    with pytest.raises(DescriptionError):
        ArmCpu(sctlr=(0, 0))  # type: ignore[arg-type]


@pytest.mark.parametrize("target", [X86_64, PPC64, AARCH64, ARM, S390X])
def test_system_reset_takes_the_target_default(target) -> None:
    assert sample_device_endian(target) == target.default_endian
    assert sample_device_endian(target, None) == target.default_endian


@pytest.mark.parametrize(
    "target, cpu, expected",
    [
        (X86_64, X86Cpu(), Endian.LITTLE),
        (PPC64, Ppc64Cpu.big_endian(), Endian.BIG),
        (PPC64, Ppc64Cpu.little_endian(), Endian.LITTLE),
        (AARCH64, ArmCpu.at_el(1, big_endian=True), Endian.BIG),
        (AARCH64, ArmCpu.at_el(1, big_endian=False), Endian.LITTLE),
        (ARM, ArmCpu.aarch32(True), Endian.BIG),
    ],
)
def test_vcpu_reset_takes_the_cpu_endianness(target, cpu, expected) -> None:
    assert sample_device_endian(target, cpu) is expected


def test_ppc64le_guest_lifecycle() -> None:
    """Firmware runs BE, the kernel switches to LE, then the driver resets the device."""
    assert sample_device_endian(PPC64) is Endian.BIG  # machine creation
    cpu = Ppc64Cpu.big_endian()
    assert sample_device_endian(PPC64, cpu) is Endian.BIG  # SLOF probing the device
    cpu = cpu.with_data_endian(False)  # the kernel sets MSR[LE]
    assert sample_device_endian(PPC64, cpu) is Endian.LITTLE  # the LE driver's reset
    assert sample_device_endian(PPC64) is Endian.BIG  # a later system_reset


def test_arm_be_guest_matches_the_verified_stream() -> None:
    """docs §3: SCTLR_EL1.EE=1 at EL1 then a status write of 0 gave device_endian 2."""
    cpu = ArmCpu(el=1).with_sctlr(1, SCTLR_EE)
    assert sample_device_endian(AARCH64, cpu) == 2


def test_cpu_of_another_binary_is_refused() -> None:
    with pytest.raises(DescriptionError) as info:
        sample_device_endian(X86_64, Ppc64Cpu())
    assert isinstance(info.value, VMStateError)
    with pytest.raises(DescriptionError):
        sample_device_endian(AARCH64, ArmCpu.aarch32())  # target=ARM, not AARCH64
