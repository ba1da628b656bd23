"""Targets and CPU endian models: who decides a legacy virtio device's byte order.

A QEMU binary has a compile-time byte order (``target_words_bigendian()``).
PPC64 and ARM guests can switch their data endianness at run time, so QEMU 2.2
added a CPU hook, ``virtio_is_big_endian`` (CPUClass in 2.2, SysemuCPUOps in
7.2), that ``virtio_reset`` consults to set ``VirtIODevice.device_endian``
(hw/virtio/virtio.c).  CPUs without the hook (x86) fall back to the target's
compile-time order.
"""

from __future__ import annotations

import enum
from typing import Protocol, runtime_checkable

import attrs

from vmstate.errors import DescriptionError

__all__ = [
    "AARCH64",
    "ARM",
    "CPSR_E",
    "MSR_LE",
    "PPC64",
    "S390X",
    "SCTLR_E0E",
    "SCTLR_EE",
    "TARGETS",
    "X86_64",
    "ArmCpu",
    "Cpu",
    "Endian",
    "Ppc64Cpu",
    "Target",
    "X86Cpu",
    "sample_device_endian",
]


class Endian(enum.IntEnum):
    """QEMU's ``enum virtio_device_endian``; the values are the wire byte."""

    #: a poison value: set while loading, before the subsections are read
    UNKNOWN = 0
    LITTLE = 1
    BIG = 2

    @classmethod
    def of(cls, big_endian: bool) -> Endian:
        """The enum value for a boolean byte order."""
        return cls.BIG if big_endian else cls.LITTLE


@attrs.frozen(kw_only=True)
class Target:
    """A QEMU system emulator binary, as far as byte order goes."""

    name: str
    #: ``target_words_bigendian()``: the binary's compile-time byte order
    big_endian: bool
    #: the guest can switch endianness at run time; QEMU's virtio-access.h
    #: defines LEGACY_VIRTIO_IS_BIENDIAN for TARGET_PPC64 and TARGET_ARM
    bi_endian: bool = False

    @property
    def default_endian(self) -> Endian:
        """``virtio_default_endian()``: the compile-time order as an Endian."""
        return Endian.of(self.big_endian)


X86_64 = Target(name="x86_64", big_endian=False)
#: qemu-system-ppc64 is a big-endian binary even when it runs a ppc64le guest
PPC64 = Target(name="ppc64", big_endian=True, bi_endian=True)
AARCH64 = Target(name="aarch64", big_endian=False, bi_endian=True)
ARM = Target(name="arm", big_endian=False, bi_endian=True)
#: big-endian and not bi-endian: legacy virtio is always big-endian there
S390X = Target(name="s390x", big_endian=True)

TARGETS: dict[str, Target] = {t.name: t for t in (X86_64, PPC64, AARCH64, ARM, S390X)}

#: MSR[LE] is bit 0 (target/ppc/cpu.h MSR_LE)
MSR_LE = 1 << 0
#: AArch32 CPSR.E, data endianness (target/arm/cpu.h CPSR_E)
CPSR_E = 1 << 9
#: SCTLR_EL1.E0E, data endianness at EL0 in AArch64
SCTLR_E0E = 1 << 24
#: SCTLR_ELx.EE, data endianness at ELx in AArch64
SCTLR_EE = 1 << 25

_U64 = (1 << 64) - 1


def _u64(_instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not 0 <= value <= _U64:
        raise DescriptionError(f"{attribute.name} must be a 64-bit register value, got {value:#x}")


@runtime_checkable
class Cpu(Protocol):
    """A vCPU that can answer QEMU's ``virtio_is_big_endian`` question."""

    @property
    def target(self) -> Target: ...

    def virtio_is_big_endian(self) -> bool:
        """Whether the CPU's current data accesses are big-endian."""
        ...


@attrs.frozen(kw_only=True)
class X86Cpu:
    """An x86 vCPU: no hook, so always the target default (little-endian)."""

    target: Target = X86_64

    def virtio_is_big_endian(self) -> bool:
        """Always the compile-time order: x86 cannot switch."""
        return self.target.big_endian


@attrs.frozen(kw_only=True)
class Ppc64Cpu:
    """A PPC64 vCPU; the hook answers ``not MSR[LE]`` (target/ppc, ppc_cpu_is_big_endian).

    LPCR[ILE] (the interrupt endianness) is deliberately not consulted: QEMU
    looks only at the current MSR.
    """

    msr: int = attrs.field(default=0, validator=_u64)
    target: Target = PPC64

    @classmethod
    def big_endian(cls) -> Ppc64Cpu:
        """A CPU running big-endian (MSR[LE] clear), the reset state."""
        return cls(msr=0)

    @classmethod
    def little_endian(cls) -> Ppc64Cpu:
        """A CPU running little-endian (MSR[LE] set), as a ppc64le kernel does."""
        return cls(msr=MSR_LE)

    def virtio_is_big_endian(self) -> bool:
        """Big unless MSR[LE] is set."""
        return not self.msr & MSR_LE

    def with_msr(self, msr: int) -> Ppc64Cpu:
        """The same CPU after an ``mtmsrd``/``rfid`` loaded a new MSR."""
        return attrs.evolve(self, msr=msr)

    def with_data_endian(self, big_endian: bool) -> Ppc64Cpu:
        """The same CPU after switching MSR[LE] (other MSR bits kept)."""
        return self.with_msr(self.msr & ~MSR_LE if big_endian else self.msr | MSR_LE)


def _check_el(_instance: object, _attribute: attrs.Attribute[int], value: int) -> None:
    if not 0 <= value <= 3:
        raise DescriptionError(f"exception level must be 0..3, got {value}")


def _check_sctlr(_instance: object, _attribute: attrs.Attribute[tuple[int, int, int]], value: tuple[int, int, int]) -> None:
    if len(value) != 3 or not all(0 <= v <= _U64 for v in value):
        raise DescriptionError(f"sctlr must be three 64-bit values (EL1, EL2, EL3), got {value!r}")


@attrs.frozen(kw_only=True)
class ArmCpu:
    """An ARM vCPU; the hook reports the current data endianness.

    Mirrors ``arm_cpu_data_is_big_endian`` (target/arm): in AArch32 it is
    CPSR.E; in AArch64 at EL0 it is SCTLR_EL1.E0E, at EL1..EL3 it is
    SCTLR_ELx.EE of the current level.  (The EL2&0 regime with HCR_EL2.E2H/TGE
    is not modelled: EL0 always reads SCTLR_EL1.)
    """

    target: Target = AARCH64
    #: executing in AArch64 state (else AArch32)
    aarch64: bool = True
    #: current exception level (AArch64 state only)
    el: int = attrs.field(default=1, validator=_check_el)
    cpsr: int = attrs.field(default=0, validator=_u64)
    #: SCTLR_EL1, SCTLR_EL2, SCTLR_EL3
    sctlr: tuple[int, int, int] = attrs.field(default=(0, 0, 0), validator=_check_sctlr)

    def __attrs_post_init__(self) -> None:
        if self.target not in (ARM, AARCH64):
            raise DescriptionError(f"{self.target.name} is not an ARM target")
        if self.aarch64 and self.target != AARCH64:
            raise DescriptionError("an AArch64-state CPU needs the aarch64 binary, not arm")

    @classmethod
    def aarch32(cls, big_endian: bool = False, *, target: Target = ARM) -> ArmCpu:
        """An AArch32 CPU with CPSR.E set for big-endian data."""
        return cls(target=target, aarch64=False, el=0, cpsr=CPSR_E if big_endian else 0)

    @classmethod
    def at_el(cls, el: int = 1, big_endian: bool = False) -> ArmCpu:
        """An AArch64 CPU at ``el`` whose data endianness there is ``big_endian``."""
        return cls(aarch64=True, el=el).with_data_endian(big_endian)

    def sctlr_of(self, el: int) -> int:
        """SCTLR_ELx for an exception level (EL0 uses SCTLR_EL1)."""
        return self.sctlr[max(el, 1) - 1]

    def virtio_is_big_endian(self) -> bool:
        """The data endianness of the current state and exception level."""
        if not self.aarch64:
            return bool(self.cpsr & CPSR_E)
        bit = SCTLR_EE if self.el else SCTLR_E0E
        return bool(self.sctlr_of(self.el) & bit)

    def with_sctlr(self, el: int, value: int) -> ArmCpu:
        """The same CPU after an ``msr SCTLR_ELx`` (``el`` 0 means EL1)."""
        index = max(el, 1) - 1
        regs = list(self.sctlr)
        regs[index] = value
        return attrs.evolve(self, sctlr=(regs[0], regs[1], regs[2]))

    def with_el(self, el: int) -> ArmCpu:
        """The same CPU after an exception entry or return to ``el``."""
        return attrs.evolve(self, el=el)

    def with_data_endian(self, big_endian: bool) -> ArmCpu:
        """The same CPU with the endian bit of its current state flipped to ``big_endian``."""
        if not self.aarch64:
            cpsr = self.cpsr | CPSR_E if big_endian else self.cpsr & ~CPSR_E
            return attrs.evolve(self, cpsr=cpsr)
        bit = SCTLR_EE if self.el else SCTLR_E0E
        old = self.sctlr_of(self.el)
        return self.with_sctlr(self.el, old | bit if big_endian else old & ~bit)


def sample_device_endian(target: Target, cpu: Cpu | None = None) -> Endian:
    """Return the ``device_endian`` that ``virtio_reset`` stores.

    A reset performed by a vCPU (the guest wrote 0 to the status register)
    takes that CPU's current endianness; a system reset (``cpu`` is None:
    machine creation, monitor ``system_reset``) takes the target default.
    """
    if cpu is None:
        return target.default_endian
    if cpu.target != target:
        raise DescriptionError(f"a {cpu.target.name} CPU cannot reset a device of the {target.name} binary")
    return Endian.of(cpu.virtio_is_big_endian())
