"""PC chipset sections: interrupt controllers, timers, firmware config, i440FX/PIIX.

Each class mirrors one QEMU 7.2 vmsd at the version 7.2 writes; the layouts
were checked against the vmdesc QEMU wrote for the same devices.  Where a
device property (not the stream) decides whether a field is sent, QEMU's
``_TEST`` gate, we declare one variant per layout (``piix4_pm`` and
``piix4_pm@2.x``) and the reader keeps the one after which the section ends.
"""

from __future__ import annotations

from typing import Any

import attrs

from vmstate import Subsection, field, state, struct
from vmstate.description import Array, Description, Field, LazyLayouts, Struct
from vmstate.typed import as_received, description_of, received_subsections
from vmstate.kinds import (
    BOOL,
    INT32,
    INT64,
    TIMER,
    UINT8,
    UINT16,
    UINT32,
    UINT64,
    array,
    buffer,
    unused,
    varray,
)

from ..virtio.pci import PciDevice

__all__ = [
    "Apic", "Dma", "DmaRegs", "FwCfg", "Hpet", "HpetTimer", "I440fx", "I8254", "I8259", "Ioapic", "KvmVapic",
    "Mc146818Rtc", "MemStatus", "MemoryHotplug", "MemoryHotplugSlots", "PciStatus", "PitChannel", "Piix3", "Piix4Pm", "Piix4PmLegacy", "PmSmbus", "PIIX4_PM_STATES",
]


def _nonzero(name: str) -> Any:
    def needed(s: Any) -> bool:
        return bool(getattr(s, name))

    needed.__qualname__ = f"nonzero({name})"
    return needed


def _pci() -> Any:
    return attrs.Factory(PciDevice)


@state(name="kvmvapic-handlers", version=1, minimum_version=1)
class VapicHandlers:
    """``vmstate_handlers`` (hw/i386/kvmvapic.c): patched TPR access routines."""

    set_tpr: int = field(UINT32)
    set_tpr_eax: int = field(UINT32)
    get_tpr: list[int] = field(array(UINT32, 8))
    get_tpr_stack: int = field(UINT32)


@state(name="kvmvapic-guest-rom", version=1, minimum_version=1)
class VapicGuestRom:
    """``vmstate_guest_rom`` (hw/i386/kvmvapic.c)."""

    #: the ROM signature, not migrated any more
    signature: bytes = field(unused(8))
    vaddr: int = field(UINT32)
    fixup_start: int = field(UINT32)
    fixup_end: int = field(UINT32)
    vapic_vaddr: int = field(UINT32)
    vapic_size: int = field(UINT32)
    vcpu_shift: int = field(UINT32)
    real_tpr_addr: int = field(UINT32)
    up: VapicHandlers = field(struct(VapicHandlers), default=attrs.Factory(VapicHandlers))
    mp: VapicHandlers = field(struct(VapicHandlers), default=attrs.Factory(VapicHandlers))


@state(name="kvm-tpr-opt", version=1, minimum_version=1)
class KvmVapic:
    """QEMU's ``vmstate_vapic`` (hw/i386/kvmvapic.c): the TPR-access patching state."""

    rom_state: VapicGuestRom = field(struct(VapicGuestRom), default=attrs.Factory(VapicGuestRom))
    state: int = field(UINT32)
    real_tpr_addr: int = field(UINT32)
    rom_state_vaddr: int = field(UINT32)
    vapic_paddr: int = field(UINT32)
    rom_state_paddr: int = field(UINT32)


@state(name="apic", version=3, minimum_version=3,
       subsections=(Subsection("apic_sipi", 1, _nonzero("wait_for_sipi"), 1),))
class Apic:
    """QEMU's ``vmstate_apic_common`` (hw/intc/apic_common.c): one local APIC."""

    apicbase: int = field(UINT32)
    id: int = field(UINT8)
    arb_id: int = field(UINT8)
    tpr: int = field(UINT8)
    spurious_vec: int = field(UINT32)
    log_dest: int = field(UINT8)
    dest_mode: int = field(UINT8)
    isr: list[int] = field(array(UINT32, 8))
    tmr: list[int] = field(array(UINT32, 8))
    irr: list[int] = field(array(UINT32, 8))
    #: APIC_LVT_NB
    lvt: list[int] = field(array(UINT32, 6))
    esr: int = field(UINT32)
    icr: list[int] = field(array(UINT32, 2))
    divide_conf: int = field(UINT32)
    count_shift: int = field(INT32)
    initial_count: int = field(UINT32)
    initial_count_load_time: int = field(INT64)
    next_time: int = field(INT64)
    timer_expiry: int = field(INT64)
    sipi_vector: int = field(INT32, subsection="apic_sipi")
    wait_for_sipi: int = field(INT32, subsection="apic_sipi")


@state(
    name="fw_cfg", version=2, minimum_version=2,
    subsections=(
        Subsection("fw_cfg/dma", 0, as_received("fw_cfg/dma")),
        Subsection("fw_cfg/acpi_mr", 1, as_received("fw_cfg/acpi_mr"), 1),
    ),
)
class FwCfg:
    """QEMU's ``vmstate_fw_cfg`` (hw/nvram/fw_cfg.c) at version 2 (a 32-bit ``cur_offset``).

    ``fw_cfg/dma`` goes with the ``dma_enabled`` property, ``fw_cfg/acpi_mr``
    with ``acpi-mr-restore``; machine types 2.x have neither.
    """

    cur_entry: int = field(UINT16)
    #: QEMU lists a 16-bit ``cur_offset`` for version 1 first, hence the index
    cur_offset: int = field(UINT32, name="cur_offset[1]")
    dma_addr: int = field(UINT64, subsection="fw_cfg/dma")
    table_mr_size: int = field(UINT64, subsection="fw_cfg/acpi_mr")
    linker_mr_size: int = field(UINT64, subsection="fw_cfg/acpi_mr")
    rsdp_mr_size: int = field(UINT64, subsection="fw_cfg/acpi_mr")
    received_subsections: frozenset[str] = received_subsections()


@state(name="I440FX", version=3, minimum_version=3)
class I440fx:
    """QEMU's ``vmstate_i440fx`` (hw/pci-host/i440fx.c): the host bridge's PCI state."""

    parent_obj: PciDevice = field(struct(PciDevice), default=_pci())
    #: once ``smm_enabled``
    smm_enabled: bytes = field(unused(1), name="unused")


@state(name="dma_regs", version=1, minimum_version=1)
class DmaRegs:
    """``vmstate_i8257_regs`` (hw/dma/i8257.c): one DMA channel."""

    now: list[int] = field(array(INT32, 2))
    base: list[int] = field(array(UINT16, 2))
    mode: int = field(UINT8)
    page: int = field(UINT8)
    pageh: int = field(UINT8)
    dack: int = field(UINT8)
    eop: int = field(UINT8)


@state(name="dma", version=1, minimum_version=1)
class Dma:
    """QEMU's ``vmstate_i8257`` (hw/dma/i8257.c): one of the two 8237 controllers (instance 0, 1)."""

    command: int = field(UINT8)
    mask: int = field(UINT8)
    flip_flop: int = field(UINT8)
    dshift: int = field(INT32)
    regs: list[DmaRegs] = field(array(struct(DmaRegs), 4), default=attrs.Factory(lambda: [DmaRegs() for _ in range(4)]))


@state(name="PIIX3", version=3, minimum_version=3, subsections=(Subsection("PIIX3/rcr", 1, _nonzero("rcr"), 1),))
class Piix3:
    """QEMU's ``vmstate_piix3`` (hw/isa/piix3.c): the PCI-ISA bridge and its PIRQ levels."""

    dev: PciDevice = field(struct(PciDevice), default=_pci())
    pci_irq_levels_vmstate: list[int] = field(array(INT32, 4))
    #: the reset control register (port 0xcf9)
    rcr: int = field(UINT8, subsection="PIIX3/rcr")


@state(name="i8259", version=1, minimum_version=1)
class I8259:
    """QEMU's ``vmstate_pic_common`` (hw/intc/i8259_common.c): one 8259 PIC (instance 0 master, 1 slave)."""

    last_irr: int = field(UINT8)
    irr: int = field(UINT8)
    imr: int = field(UINT8)
    isr: int = field(UINT8)
    priority_add: int = field(UINT8)
    irq_base: int = field(UINT8)
    read_reg_select: int = field(UINT8)
    poll: int = field(UINT8)
    special_mask: int = field(UINT8)
    init_state: int = field(UINT8)
    auto_eoi: int = field(UINT8)
    rotate_on_auto_eoi: int = field(UINT8)
    special_fully_nested_mode: int = field(UINT8)
    init4: int = field(UINT8)
    single_mode: int = field(UINT8)
    elcr: int = field(UINT8)


@state(name="ioapic", version=3, minimum_version=3)
class Ioapic:
    """QEMU's ``vmstate_ioapic_common`` (hw/intc/ioapic_common.c)."""

    id: int = field(UINT8)
    ioregsel: int = field(UINT8)
    #: once ``irr`` as 64 bits
    padding: bytes = field(unused(8), name="unused")
    irr: int = field(UINT32)
    #: IOAPIC_NUM_PINS redirection entries
    ioredtbl: list[int] = field(array(UINT64, 24))


@state(name="hpet_timer", version=1, minimum_version=1)
class HpetTimer:
    """``vmstate_hpet_timer`` (hw/timer/hpet.c): one comparator."""

    tn: int = field(UINT8)
    config: int = field(UINT64)
    cmp: int = field(UINT64)
    fsb: int = field(UINT64)
    period: int = field(UINT64)
    wrap_flag: int = field(UINT8)
    qemu_timer: int = field(TIMER)


@state(
    name="hpet", version=2, minimum_version=2,
    subsections=(Subsection("hpet/rtc_irq_level", 1, _nonzero("rtc_irq_level"), 1),
                 Subsection("hpet/offset", 1, as_received("hpet/offset"), 1)),
)
class Hpet:
    """QEMU's ``vmstate_hpet`` (hw/timer/hpet.c); ``timer`` holds ``num_timers`` comparators.

    ``hpet/offset`` goes with the ``hpet-offset-saved`` property (off on 2.x machine types).
    """

    config: int = field(UINT64)
    isr: int = field(UINT64)
    hpet_counter: int = field(UINT64)
    num_timers: int = field(UINT8, default=3)
    timer: list[HpetTimer] = field(
        varray(struct(HpetTimer), "num_timers"), default=attrs.Factory(lambda: [HpetTimer() for _ in range(3)])
    )
    rtc_irq_level: int = field(UINT8, subsection="hpet/rtc_irq_level")
    hpet_offset: int = field(UINT64, subsection="hpet/offset")
    received_subsections: frozenset[str] = received_subsections()


@state(
    name="mc146818rtc", version=3, minimum_version=3,
    subsections=(Subsection("mc146818rtc/irq_reinject_on_ack_count", 1, _nonzero("irq_reinject_on_ack_count"), 1),),
)
class Mc146818Rtc:
    """QEMU's ``vmstate_rtc`` (hw/rtc/mc146818rtc.c): CMOS RAM and the clock's timers."""

    cmos_data: bytes = field(buffer(128))
    cmos_index: int = field(UINT8)
    #: seven 32-bit fields of the old RTC model
    unused_tm: bytes = field(unused(28), name="unused[0]")
    periodic_timer: int = field(TIMER)
    next_periodic_time: int = field(INT64)
    #: three 64-bit fields of the old update timers
    unused_update: bytes = field(unused(24), name="unused[1]")
    irq_coalesced: int = field(UINT32)
    period: int = field(UINT32)
    base_rtc: int = field(UINT64)
    last_update: int = field(UINT64)
    offset: int = field(INT64)
    update_timer: int = field(TIMER)
    next_alarm_time: int = field(UINT64)
    irq_reinject_on_ack_count: int = field(UINT16, subsection="mc146818rtc/irq_reinject_on_ack_count")


@state(name="pit channel", version=2, minimum_version=2)
class PitChannel:
    """``vmstate_pit_channel`` (hw/timer/i8254_common.c): one 8254 counter."""

    count: int = field(INT32)
    latched_count: int = field(UINT16)
    count_latched: int = field(UINT8)
    status_latched: int = field(UINT8)
    status: int = field(UINT8)
    read_state: int = field(UINT8)
    write_state: int = field(UINT8)
    write_latch: int = field(UINT8)
    rw_mode: int = field(UINT8)
    mode: int = field(UINT8)
    bcd: int = field(UINT8)
    gate: int = field(UINT8)
    count_load_time: int = field(INT64)
    next_transition_time: int = field(INT64)


@state(name="i8254", version=3, minimum_version=3)
class I8254:
    """QEMU's ``vmstate_pit_common`` (hw/timer/i8254_common.c): the PIT."""

    #: ``channels[0].irq_disabled``
    irq_disabled: int = field(UINT32, name="channels[0].irq_disabled")
    channels: list[PitChannel] = field(
        array(struct(PitChannel), 3), default=attrs.Factory(lambda: [PitChannel() for _ in range(3)])
    )
    #: ``channels[0].next_transition_time`` again: channel 0's IRQ timer
    channel0_next_transition_time: int = field(INT64, name="channels[0].next_transition_time")


@state(name="APM State", version=1, minimum_version=1)
class Apm:
    """``vmstate_apm`` (hw/isa/apm.c): the APM control and status ports."""

    apmc: int = field(UINT8)
    apms: int = field(UINT8)


@state(name="pmsmb", version=1, minimum_version=1)
class PmSmbus:
    """``pmsmb_vmstate`` (hw/i2c/pm_smbus.c): the SMBus host controller."""

    smb_stat: int = field(UINT8)
    smb_ctl: int = field(UINT8)
    smb_cmd: int = field(UINT8)
    smb_addr: int = field(UINT8)
    smb_data0: int = field(UINT8)
    smb_data1: int = field(UINT8)
    smb_index: int = field(UINT32)
    #: PM_SMBUS_MAX_MSG_SIZE bytes
    smb_data: list[int] = field(array(UINT8, 32))
    smb_auxctl: int = field(UINT8)
    smb_blkdata: int = field(UINT8)
    i2c_enable: bool = field(BOOL)
    op_done: bool = field(BOOL)
    in_i2c_block_read: bool = field(BOOL)
    start_transaction_on_status_read: bool = field(BOOL)


@state(name="gpe", version=1, minimum_version=1)
class Gpe:
    """``vmstate_gpe`` (hw/acpi/piix4.c): the GPE0 status and enable registers."""

    sts: int = field(UINT16)
    en: int = field(UINT16)


@state(name="acpi_pcihp_pci_status", version=1, minimum_version=1)
class PciStatus:
    """``vmstate_acpi_pcihp_pci_status`` (hw/acpi/pcihp.c): hot-plug events of one bus."""

    up: int = field(UINT32)
    down: int = field(UINT32)


@state(name="memory hotplug device state", version=1, minimum_version=1)
class MemStatus:
    """``vmstate_memhp_sts`` (hw/acpi/memory_hotplug.c): one memory slot's hot-plug status."""

    is_enabled: bool = field(BOOL)
    is_inserting: bool = field(BOOL)
    ost_event: int = field(UINT32)
    ost_status: int = field(UINT32)


@state(name="memory hotplug state", version=1, minimum_version=1)
class MemoryHotplug:
    """``vmstate_memory_hotplug`` (hw/acpi/memory_hotplug.c) of a machine without memory slots.

    Its ``devs`` array (``VMSTATE_STRUCT_VARRAY_POINTER_UINT32``) is counted
    by ``dev_count``, which ``acpi_memory_hotplug_init`` sets to the
    machine's slot count (``-m ...,slots=N``, 0 without): the stream does not
    carry it.  Machines with slots are ``MemoryHotplugSlots`` layouts.
    """

    selector: int = field(UINT32)


@state(name="memory hotplug state", version=1, minimum_version=1)
class MemoryHotplugSlots:
    """``vmstate_memory_hotplug`` with memory slots: one ``MemStatus`` per slot.

    Declared with no slot; ``with_memory_slots`` makes the layout of each
    count.  A section read with one keeps the statuses in its record; the
    typed ``Piix4Pm`` object holds only the ``selector``.
    """

    selector: int = field(UINT32)
    devs: list[MemStatus] = field(array(struct(MemStatus), 0), default=attrs.Factory(list))


#: ACPI_MAX_RAM_SLOTS (include/hw/acpi/acpi.h): the most memory slots a pc machine takes
MAX_MEMORY_SLOTS = 256


def _with_count(field: Field, count: int) -> Field:
    """``field``, an array, with ``count`` elements."""
    assert isinstance(field.kind, Array)
    return attrs.evolve(field, kind=attrs.evolve(field.kind, count=count))


def _memory_hotplug(slots: int) -> Struct:
    """The ``memory hotplug state`` struct of a machine with ``slots`` memory slots."""
    base = description_of(MemoryHotplugSlots)
    devs = tuple(_with_count(f, slots) if f.name == "devs" else f for f in base.fields)
    return Struct(description=attrs.evolve(base, fields=devs))


def with_memory_slots(cls: type, subsection: str) -> None:
    """Give ``cls``'s description one alternative layout per memory slot count, 1..``MAX_MEMORY_SLOTS``.

    Only the ``subsection`` (``piix4_pm/memhp``) differs between them; the
    reader tries them in order and keeps the one after which the section
    ends (``Description.alternatives``).
    """
    base = description_of(cls)

    def layout(slots: int) -> Description:
        subs = tuple(
            attrs.evolve(sub, fields=tuple(attrs.evolve(f, kind=_memory_hotplug(slots)) for f in sub.fields))
            if sub.name == subsection else sub
            for sub in base.subsections
        )
        return attrs.evolve(base, subsections=subs)

    # built as a reader reaches them: most machines have no slot, and the first layout fits
    cls.__vmstate__ = attrs.evolve(  # type: ignore[attr-defined]
        base, alternatives=LazyLayouts(MAX_MEMORY_SLOTS, lambda i: layout(i + 1)))


#: ACPI_PCIHP_MAX_HOTPLUG_BUS
_HOTPLUG_BUSES = 256


def _piix4_pm(name: str, *, smbus_and_acpi_index: bool) -> type:
    def migrated(_state: Any, _version: int) -> bool:
        return smbus_and_acpi_index

    migrated.__qualname__ = "smbus_and_acpi_index_migrated" if smbus_and_acpi_index else "before_smbus_and_acpi_index"

    @state(name=name, version=3, minimum_version=3,
           subsections=(Subsection("piix4_pm/memhp", 1, as_received("piix4_pm/memhp"), 1),))
    class Piix4PmState:
        parent_obj: PciDevice = field(struct(PciDevice), default=_pci())
        pm1_evt_sts: int = field(UINT16, name="ar.pm1.evt.sts")
        pm1_evt_en: int = field(UINT16, name="ar.pm1.evt.en")
        pm1_cnt: int = field(UINT16, name="ar.pm1.cnt.cnt")
        apm: Apm = field(struct(Apm), default=attrs.Factory(Apm))
        smb: PmSmbus = field(struct(PmSmbus), exists=migrated, default=attrs.Factory(PmSmbus))
        tmr_timer: int = field(TIMER, name="ar.tmr.timer")
        tmr_overflow_time: int = field(INT64, name="ar.tmr.overflow_time")
        gpe: Gpe = field(struct(Gpe), default=attrs.Factory(Gpe), name="ar.gpe")
        hotplug_select: int = field(UINT32, name="acpi_pci_hotplug.hotplug_select")
        pci_status: list[PciStatus] = field(
            array(struct(PciStatus), _HOTPLUG_BUSES),
            default=attrs.Factory(lambda: [PciStatus() for _ in range(_HOTPLUG_BUSES)]),
            name="acpi_pci_hotplug.acpi_pcihp_pci_status",
        )
        acpi_index: int = field(UINT32, exists=migrated, name="acpi_pci_hotplug.acpi_index")
        memory_hotplug: MemoryHotplug = field(
            struct(MemoryHotplug), subsection="piix4_pm/memhp", default=attrs.Factory(MemoryHotplug),
            name="acpi_memory_hotplug",
        )
        received_subsections: frozenset[str] = received_subsections()

    return Piix4PmState


Piix4Pm = _piix4_pm("piix4_pm", smbus_and_acpi_index=True)
Piix4Pm.__doc__ = """QEMU's ``vmstate_acpi`` (hw/acpi/piix4.c) as machine types 7.2 write it: SMBus state and ``acpi_index``.

The ACPI PCI hot-plug state is the bridge-capable form (``hotplug_select``
and one status per bus); ``piix4_pm/memhp`` goes with memory hot-plug.
"""
Piix4PmLegacy = _piix4_pm("piix4_pm@2.x", smbus_and_acpi_index=False)
Piix4PmLegacy.__doc__ = """``piix4_pm`` as machine types 2.x write it: no SMBus state, no ``acpi_index``."""
for _cls in (Piix4Pm, Piix4PmLegacy):
    with_memory_slots(_cls, "piix4_pm/memhp")

#: both layouts, the one of today's machine types first
PIIX4_PM_STATES: tuple[type, ...] = (Piix4Pm, Piix4PmLegacy)
