"""Every machine state class the default registry holds beyond ``devices.machine``'s facade (imports them all)."""

from __future__ import annotations

from .pc_chipset import (
    PIIX4_PM_STATES, Apic, Dma, FwCfg, Hpet, I440fx, I8254, I8259, Ioapic, KvmVapic, Mc146818Rtc, Piix3,
)
from .pc_isa import Fdc, Pckbd, PiixIde, Ps2Keyboard, Ps2Mouse, ScsiDisk, Vmmouse
from .ppc import PPC_CPU_STATES, SPAPR_PCI_STATES, IcpServer, Ics, SpaprIommu, SpaprMachine, SpaprNvram, SpaprRtc
from .x86_cpu import X86CpuState

__all__ = ["MACHINE_STATES"]

#: the section state classes of the x86 and ppc64 machines beyond core's and pc's (registered by ``devices``)
MACHINE_STATES: tuple[type, ...] = (
    X86CpuState, KvmVapic, Apic, FwCfg, I440fx, Dma, Piix3, I8259, Ioapic, Hpet, Mc146818Rtc, I8254,
    *PIIX4_PM_STATES, Fdc, Ps2Keyboard, Ps2Mouse, Pckbd, Vmmouse, PiixIde, ScsiDisk,
    *PPC_CPU_STATES, Ics, IcpServer, SpaprRtc, SpaprNvram, SpaprIommu, *SPAPR_PCI_STATES, SpaprMachine,
)
