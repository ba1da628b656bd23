"""ppc64 ``pseries`` sections: the vCPU, XICS, RTC, NVRAM, TCE tables, the PHB, the machine.

QEMU 7.2's vmsds at the version 7.2 writes, and what QEMU 10.0 changed in
them: ``cpu/slb`` version 2 (QEMU 9.1 dropped the pre-3.0 machine types, and
with them the SLB size field; 10.0 still loads version 1), so
``cpu@ppc64-9.1`` writes it at 2 where ``cpu@ppc64`` writes 7.2's 1; and the
POWER10 ``cpu/bhrb`` subsection (the branch history rolling buffer, QEMU 9.0).
Two of them carry fields that
only older machine types send (``cpu_pre_2_8_migration``,
``cpu_pre_3_0_migration``, ``pre_2_8_migration``: machine properties, not in
the stream), so they come in variants, ``cpu@ppc64`` / ``cpu@ppc64-pre-3.0`` /
``cpu@ppc64-pre-2.8`` and ``spapr_pci`` / ``spapr_pci@pre-2.8``, and the
reader keeps the one after which the section ends.
"""

from __future__ import annotations

from typing import Any

import attrs

from vmstate import Subsection, field, state, struct
from vmstate.kinds import (
    BOOL,
    INT32,
    INT64,
    INT64_EQUAL,
    UINT8,
    UINT32,
    UINT32_EQUAL,
    UINT64,
    array,
    buffer,
    unused,
    varray,
    vbuffer,
)

from vmstate.typed import as_received, received_subsections

__all__ = [
    "Avr", "IcsIrq", "Ics", "IcpServer", "PPC_CPU_STATES", "PpcCpu", "PpcCpu91", "PpcCpuPre28", "PpcCpuPre30", "Slbe", "SPAPR_PCI_STATES",
    "SpaprIommu", "SpaprMachine", "Timebase", "SpaprNvram", "SpaprPci", "SpaprPciPre28", "SpaprRtc",
]


@state(name="avr", version=0)
class Avr:
    """One Altivec register as QEMU's ``avr`` info writes it: VsrD(0), then VsrD(1)."""

    high: int = field(UINT64)
    low: int = field(UINT64)


@state(name="slbe", version=0)
class Slbe:
    """One SLB entry (``vmstate_slbe``, target/ppc/machine.c)."""

    esid: int = field(UINT64)
    vsid: int = field(UINT64)


def _machine_before(release: str, flag: bool) -> Any:
    def test(_state: Any, _version: int) -> bool:
        return flag

    test.__qualname__ = f"pre_{release}_migration" if flag else f"not_pre_{release}_migration"
    return test


#: the CPU model decides these (insns_flags, the MMU model), not the stream; QEMU's order
#: (target/ppc/machine.c): cpu/bhrb comes after cpu/slb (POWER10 CPUs: bhrb_needed)
def _ppc_cpu_subsections(slb_version: int) -> tuple[Subsection, ...]:
    names = ("cpu/fpu", "cpu/altivec", "cpu/vsx", "cpu/slb", "cpu/bhrb", "cpu/compat")
    # cpu/compat: a compat PVR set and not a pre-2.10 machine type
    return tuple(Subsection(n, slb_version if n == "cpu/slb" else 1, as_received(n), 1) for n in names)


def _ppc_cpu(name: str, *, pre_2_8: bool, pre_3_0: bool, slb_version: int = 1) -> type:
    old = _machine_before("2_8", pre_2_8)
    pre_3_0_test = _machine_before("3_0", pre_3_0)

    def before_3_0(view: Any, version: int) -> bool:
        # cpu/slb version 2 (QEMU 9.1) has no mig_slb_nr at all
        return version < 2 and pre_3_0_test(view, version)

    @state(name=name, version=5, minimum_version=5, subsections=_ppc_cpu_subsections(slb_version))
    class PpcCpuState:
        #: was the PVR
        pvr_padding: bytes = field(unused(8), name="unused")
        gpr: list[int] = field(array(UINT64, 32), name="env.gpr")
        crf: list[int] = field(array(UINT32, 8), name="env.crf")
        nip: int = field(UINT64, name="env.nip")
        spr: list[int] = field(array(UINT64, 1024), name="env.spr")
        spe_acc: int = field(UINT64, name="env.spe_acc")
        reserve_addr: int = field(UINT64, name="env.reserve_addr")
        msr: int = field(UINT64, name="env.msr")
        hflags_compat_nmsr: int = field(UINT64, name="env.hflags_compat_nmsr")
        mig_msr_mask: int = field(UINT64, exists=old)
        mig_insns_flags: int = field(UINT64, exists=old)
        mig_insns_flags2: int = field(UINT64, exists=old)
        mig_nb_BATs: int = field(UINT32, exists=old)
        #: the high doublewords of VSR0-31 (QEMU's ``fpr`` info)
        fpr: list[int] = field(array(UINT64, 32), subsection="cpu/fpu", name="env.vsr")
        fpscr: int = field(UINT64, subsection="cpu/fpu", name="env.fpscr")
        avr: list[Avr] = field(
            array(struct(Avr), 32), subsection="cpu/altivec", default=attrs.Factory(lambda: [Avr() for _ in range(32)]),
            name="env.vsr",
        )
        #: the architected VSCR (QEMU's ``cpu/altivec/vscr`` info)
        vscr: int = field(UINT32, subsection="cpu/altivec")
        #: the low doublewords of VSR0-31 (QEMU's ``vsr`` info)
        vsr: list[int] = field(array(UINT64, 32), subsection="cpu/vsx", name="env.vsr")
        #: the SLB size, sent by machine types before 3.0
        mig_slb_nr: int = field(INT32, subsection="cpu/slb", exists=before_3_0)
        #: MAX_SLB_ENTRIES
        slb: list[Slbe] = field(
            array(struct(Slbe), 64), subsection="cpu/slb", default=attrs.Factory(lambda: [Slbe() for _ in range(64)]),
            name="env.slb",
        )
        #: POWER10's branch history rolling buffer (env.bhrb_offset, BHRB_MAX_NUM_ENTRIES entries)
        bhrb_offset: int = field(UINT64, subsection="cpu/bhrb", name="env.bhrb_offset")
        bhrb: list[int] = field(
            array(UINT64, 32), subsection="cpu/bhrb", default=attrs.Factory(lambda: [0] * 32), name="env.bhrb"
        )
        compat_pvr: int = field(UINT32, subsection="cpu/compat")
        received_subsections: frozenset[str] = received_subsections()

    return PpcCpuState


PpcCpu = _ppc_cpu("cpu@ppc64", pre_2_8=False, pre_3_0=False)
PpcCpu.__doc__ = """QEMU's ``vmstate_ppc_cpu`` (target/ppc/machine.c) of qemu-system-ppc64, version 5.

Subsections ``cpu/tm``, ``cpu/sr`` and the embedded TLBs are not described.
"""
PpcCpu91 = _ppc_cpu("cpu@ppc64-9.1", pre_2_8=False, pre_3_0=False, slb_version=2)
PpcCpu91.__doc__ = """``cpu@ppc64`` as QEMU 9.1 and later send it: ``cpu/slb`` at version 2 (written back at 2)."""
PpcCpuPre30 = _ppc_cpu("cpu@ppc64-pre-3.0", pre_2_8=False, pre_3_0=True)
PpcCpuPre30.__doc__ = """``cpu@ppc64`` as machine types 2.8 to 2.12 send it: the SLB size too."""
PpcCpuPre28 = _ppc_cpu("cpu@ppc64-pre-2.8", pre_2_8=True, pre_3_0=True)
PpcCpuPre28.__doc__ = """``cpu@ppc64`` as machine types before 2.8 send it: MSR mask, instruction flags, BAT count, SLB size."""
PPC_CPU_STATES: tuple[type, ...] = (PpcCpu, PpcCpu91, PpcCpuPre30, PpcCpuPre28)


@state(name="irq", version=2, minimum_version=2)
class IcsIrq:
    """``vmstate_ics_irq`` (hw/intc/xics.c): one interrupt source."""

    server: int = field(UINT32)
    priority: int = field(UINT8)
    saved_priority: int = field(UINT8)
    status: int = field(UINT8)
    flags: int = field(UINT8)


@state(name="ics", version=1, minimum_version=1)
class Ics:
    """QEMU's ``vmstate_ics`` (hw/intc/xics.c): the XICS source controller, ``nr_irqs`` sources."""

    nr_irqs: int = field(UINT32_EQUAL)
    irqs: list[IcsIrq] = field(varray(struct(IcsIrq), "nr_irqs"), default=attrs.Factory(list))


@state(name="icp/server", version=1, minimum_version=1)
class IcpServer:
    """QEMU's ``vmstate_icp_server`` (hw/intc/xics.c): one presentation controller."""

    xirr: int = field(UINT32)
    pending_priority: int = field(UINT8)
    mfrr: int = field(UINT8)


@state(name="spapr/rtc", version=1, minimum_version=1)
class SpaprRtc:
    """QEMU's ``vmstate_spapr_rtc`` (hw/ppc/spapr_rtc.c): the guest clock's offset from the host's."""

    ns_offset: int = field(INT64)


@state(name="spapr_nvram", version=1, minimum_version=1)
class SpaprNvram:
    """QEMU's ``vmstate_spapr_nvram`` (hw/nvram/spapr_nvram.c): the whole NVRAM image."""

    size: int = field(UINT32)
    buf: bytes = field(vbuffer("size"), default=b"")


@state(
    name="spapr_iommu", version=3, minimum_version=3,
    subsections=(Subsection("spapr_iommu_ex", 1, lambda t: bool(t.bus_offset) or t.page_shift != 12, 1),),
)
class SpaprIommu:
    """QEMU's ``vmstate_spapr_tce_table`` (hw/ppc/spapr_iommu.c): one TCE table (instance = LIOBN)."""

    liobn: int = field(UINT32_EQUAL)
    mig_nb_table: int = field(UINT32)
    bypass: bool = field(BOOL)
    mig_table: list[int] = field(varray(UINT64, "mig_nb_table"), default=attrs.Factory(list))
    def_win: bool = field(BOOL)
    bus_offset: int = field(UINT64, subsection="spapr_iommu_ex")
    #: 12: 4 KiB IOMMU pages
    page_shift: int = field(UINT32, subsection="spapr_iommu_ex", default=12)


@state(name="spapr_pci/lsi", version=1, minimum_version=1)
class SpaprPciLsi:
    """``vmstate_spapr_pci_lsi``: the IRQ of one PCI pin."""

    irq: int = field(UINT32_EQUAL)


@state(name="spapr_pci/msi", version=1, minimum_version=1)
class SpaprPciMsi:
    """``vmstate_spapr_pci_msi``: the MSIs given to one device."""

    key: int = field(UINT32)
    first_irq: int = field(UINT32)
    num: int = field(UINT32)


def _spapr_pci(name: str, *, pre_2_8: bool) -> type:
    old = _machine_before("2_8", pre_2_8)

    @state(name=name, version=2, minimum_version=2)
    class SpaprPciState:
        buid: int = field(INT64_EQUAL)
        mig_liobn: int = field(UINT32, exists=old)
        mig_mem_win_addr: int = field(UINT64, exists=old)
        mig_mem_win_size: int = field(UINT64, exists=old)
        mig_io_win_addr: int = field(UINT64, exists=old)
        mig_io_win_size: int = field(UINT64, exists=old)
        lsi_table: list[SpaprPciLsi] = field(
            array(struct(SpaprPciLsi), 4), default=attrs.Factory(lambda: [SpaprPciLsi() for _ in range(4)])
        )
        msi_devs_num: int = field(INT32)
        msi_devs: list[SpaprPciMsi] = field(varray(struct(SpaprPciMsi), "msi_devs_num"), default=attrs.Factory(list))

    return SpaprPciState


SpaprPci = _spapr_pci("spapr_pci", pre_2_8=False)
SpaprPci.__doc__ = """QEMU's ``vmstate_spapr_pci`` (hw/ppc/spapr_pci.c): the PHB's LSIs and MSIs."""
SpaprPciPre28 = _spapr_pci("spapr_pci@pre-2.8", pre_2_8=True)
SpaprPciPre28.__doc__ = """``spapr_pci`` as machine types before 2.8 send it: the LIOBN and both windows too."""
SPAPR_PCI_STATES: tuple[type, ...] = (SpaprPci, SpaprPciPre28)

#: spapr capabilities QEMU 7.2 migrates, one ``spapr/cap/NAME`` subsection each
_CAPS = (
    "htm", "vsx", "dfp", "cfpc", "sbbc", "ibs", "hpt_maxpagesize", "nested_kvm_hv", "large_decr", "ccf_assist",
    "fwnmi", "rpt_invalidate",
)


@state(name="timebase", version=1, minimum_version=1)
class Timebase:
    """``vmstate_ppc_timebase`` (hw/ppc/ppc.c): the guest timebase and the host time it was read at."""

    guest_timebase: int = field(UINT64)
    time_of_the_day_ns: int = field(INT64)


@state(
    name="spapr", version=3, minimum_version=3,
    subsections=(
        # sent once the guest negotiated option vector 5 (client-architecture-support)
        Subsection("spapr_option_vector_ov5_cas", 1, as_received("spapr_option_vector_ov5_cas"), 1),
        Subsection("spapr_patb_entry", 1, lambda m: bool(m.patb_entry), 1),
        # each capability is sent when it differs from the machine type's default
        *(Subsection(f"spapr/cap/{cap}", 1, as_received(f"spapr/cap/{cap}"), 1) for cap in _CAPS),
        # sent after the guest's client-architecture-support call updated the device tree
        Subsection("spapr_dtb", 1, as_received("spapr_dtb"), 1),
    ),
)
class SpaprMachine:
    """QEMU's ``vmstate_spapr`` (hw/ppc/spapr.c): the timebase and the machine's negotiated state.

    ``spapr_pending_events`` (a queue of RTAS events) and ``spapr_irq_map``
    (a bitmap sized by the machine, not the stream) are not described.
    """

    tb: Timebase = field(struct(Timebase), default=attrs.Factory(Timebase))
    #: OV5 as negotiated (``spapr_option_vector``: a bitmap of longs)
    ov5_cas: bytes = field(buffer(256, type_name="bitmap"), subsection="spapr_option_vector_ov5_cas",
                           default=bytes(256))
    patb_entry: int = field(UINT64, subsection="spapr_patb_entry")
    cap_htm: int = field(UINT8, subsection="spapr/cap/htm", name="mig.caps[0x00]")
    cap_vsx: int = field(UINT8, subsection="spapr/cap/vsx", name="mig.caps[0x01]")
    cap_dfp: int = field(UINT8, subsection="spapr/cap/dfp", name="mig.caps[0x02]")
    cap_cfpc: int = field(UINT8, subsection="spapr/cap/cfpc", name="mig.caps[0x03]")
    cap_sbbc: int = field(UINT8, subsection="spapr/cap/sbbc", name="mig.caps[0x04]")
    cap_ibs: int = field(UINT8, subsection="spapr/cap/ibs", name="mig.caps[0x05]")
    cap_hpt_maxpagesize: int = field(UINT8, subsection="spapr/cap/hpt_maxpagesize", name="mig.caps[0x06]")
    cap_nested_kvm_hv: int = field(UINT8, subsection="spapr/cap/nested_kvm_hv", name="mig.caps[0x07]")
    cap_large_decr: int = field(UINT8, subsection="spapr/cap/large_decr", name="mig.caps[0x08]")
    cap_ccf_assist: int = field(UINT8, subsection="spapr/cap/ccf_assist", name="mig.caps[0x09]")
    cap_fwnmi: int = field(UINT8, subsection="spapr/cap/fwnmi", name="mig.caps[0x0a]")
    cap_rpt_invalidate: int = field(UINT8, subsection="spapr/cap/rpt_invalidate", name="mig.caps[0x0b]")
    fdt_initial_size: int = field(UINT32, subsection="spapr_dtb")
    fdt_size: int = field(UINT32, subsection="spapr_dtb")
    fdt_blob: bytes = field(vbuffer("fdt_size"), subsection="spapr_dtb", default=b"")
    received_subsections: frozenset[str] = received_subsections()
