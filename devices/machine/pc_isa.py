"""PC peripheral sections: floppy, PS/2, i8042, vmmouse, PIIX IDE, SCSI disk.

As in ``pc_chipset``: QEMU 7.2's vmsds at the version 7.2 writes, checked
against QEMU's vmdesc of the same devices.  Subsections whose layout depends
on state the stream does not carry (IDE's PIO buffer, whose length is not
sent) are left out on purpose: a stream that has one fails with
``UnknownSubsectionError`` and the section is kept as read, never misread.
"""

from __future__ import annotations

from typing import Any

import attrs

from vmstate import Subsection, field, state, struct
from vmstate.description import CustomContext
from vmstate.errors import EncodeError, UnsupportedError
from vmstate.kinds import (
    BOOL,
    INT32,
    INT64,
    TIMER,
    UINT8,
    UINT8_EQUAL,
    UINT16,
    UINT32,
    INT32_EQUAL,
    array,
    buffer,
)
from vmstate.description import Custom
from vmstate.wire import ByteReader

from vmstate.typed import as_received, received_subsections

from ..virtio.pci import PciDevice

__all__ = [
    "Fdc", "FdcState", "Fdrive", "IdeBmdma", "Kbd", "IdeBus", "IdeDrive", "PiixIde", "Pckbd", "Ps2Common", "Ps2Keyboard", "Ps2Mouse",
    "ScsiDevice", "ScsiDisk", "ScsiRequests", "Vmmouse",
]


def _nonzero(*names: str) -> Any:
    def needed(s: Any) -> bool:
        return any(getattr(s, name) for name in names)

    needed.__qualname__ = f"nonzero({', '.join(names)})"
    return needed


@state(
    name="fdrive", version=1, minimum_version=1,
    subsections=(
        # QEMU also asks for an attached drive (drive->blk), which the stream does not say
        Subsection("fdrive/media_changed", 1, lambda d: d.media_changed != 1, 1),
        # sent when the controller's check_media_rate property is on (every machine type since 2.0)
        Subsection("fdrive/media_rate", 1, as_received("fdrive/media_rate"), 1),
        Subsection("fdrive/perpendicular", 1, _nonzero("perpendicular"), 1),
    ),
)
class Fdrive:
    """``vmstate_fdrive`` (hw/block/fdc.c): one floppy drive's head position."""

    head: int = field(UINT8)
    track: int = field(UINT8)
    sect: int = field(UINT8)
    media_changed: int = field(UINT8, subsection="fdrive/media_changed", default=1)
    media_rate: int = field(UINT8, subsection="fdrive/media_rate")
    perpendicular: int = field(UINT8, subsection="fdrive/perpendicular")
    received_subsections: frozenset[str] = received_subsections()


@state(
    name="fdc", version=2, minimum_version=2,
    subsections=(
        Subsection("fdc/reset_sensei", 1, _nonzero("reset_sensei"), 1),
        # needed while the result timer is pending (QEMU asks the timer, not the saved value)
        Subsection("fdc/result_timer", 1, as_received("fdc/result_timer"), 1),
        # needed when the phase differs from what the registers imply
        Subsection("fdc/phase", 1, as_received("fdc/phase"), 1),
    ),
)
class FdcState:
    """``vmstate_fdc`` (hw/block/fdc.c): the floppy controller."""

    sra: int = field(UINT8)
    srb: int = field(UINT8)
    dor_vmstate: int = field(UINT8)
    tdr: int = field(UINT8)
    dsr: int = field(UINT8)
    msr: int = field(UINT8)
    status0: int = field(UINT8)
    status1: int = field(UINT8)
    status2: int = field(UINT8)
    #: FD_SECTOR_LEN bytes
    fifo: bytes = field(buffer(512))
    data_pos: int = field(UINT32)
    data_len: int = field(UINT32)
    data_state: int = field(UINT8)
    data_dir: int = field(UINT8)
    eot: int = field(UINT8)
    timer0: int = field(UINT8)
    timer1: int = field(UINT8)
    precomp_trk: int = field(UINT8)
    config: int = field(UINT8)
    lock: int = field(UINT8)
    pwrd: int = field(UINT8)
    num_floppies: int = field(UINT8_EQUAL, default=2)
    #: MAX_FD drives
    drives: list[Fdrive] = field(array(struct(Fdrive), 2), default=attrs.Factory(lambda: [Fdrive(), Fdrive()]))
    reset_sensei: int = field(INT32, subsection="fdc/reset_sensei")
    result_timer: int = field(TIMER, subsection="fdc/result_timer")
    phase: int = field(UINT8, subsection="fdc/phase")
    received_subsections: frozenset[str] = received_subsections()


@state(name="fdc", version=2, minimum_version=2)
class Fdc:
    """QEMU's ``vmstate_isa_fdc`` (hw/block/fdc-isa.c): the ISA floppy controller."""

    state: FdcState = field(struct(FdcState), default=attrs.Factory(FdcState))


@state(name="PS2 Common State", version=3, minimum_version=2)
class Ps2Common:
    """``vmstate_ps2_common`` (hw/input/ps2.c): the command byte and the output queue."""

    write_cmd: int = field(INT32)
    rptr: int = field(INT32)
    wptr: int = field(INT32)
    count: int = field(INT32)
    #: PS2_BUFFER_SIZE bytes
    data: bytes = field(buffer(256))


@state(
    name="ps2kbd", version=3, minimum_version=3,
    subsections=(
        Subsection("ps2kbd/ledstate", 3, _nonzero("ledstate"), 2),
        Subsection("ps2kbd/need_high_bit", 1, _nonzero("need_high_bit"), 1),
        Subsection("ps2kbd/command_reply_queue", 0, lambda k: k.cwptr != -1),
    ),
)
class Ps2Keyboard:
    """QEMU's ``vmstate_ps2_keyboard`` (hw/input/ps2.c)."""

    parent_obj: Ps2Common = field(struct(Ps2Common), default=attrs.Factory(Ps2Common))
    scan_enabled: int = field(INT32)
    translate: int = field(INT32)
    scancode_set: int = field(INT32)
    ledstate: int = field(INT32, subsection="ps2kbd/ledstate")
    need_high_bit: bool = field(BOOL, subsection="ps2kbd/need_high_bit")
    #: where the command replies end in the queue; -1 when none are queued
    cwptr: int = field(INT32, subsection="ps2kbd/command_reply_queue", default=-1)


@state(name="ps2mouse", version=2, minimum_version=2)
class Ps2Mouse:
    """QEMU's ``vmstate_ps2_mouse`` (hw/input/ps2.c)."""

    parent_obj: Ps2Common = field(struct(Ps2Common), default=attrs.Factory(Ps2Common))
    mouse_status: int = field(UINT8)
    mouse_resolution: int = field(UINT8)
    mouse_sample_rate: int = field(UINT8)
    mouse_wrap: int = field(UINT8)
    mouse_type: int = field(UINT8)
    mouse_detect_state: int = field(UINT8)
    mouse_dx: int = field(INT32)
    mouse_dy: int = field(INT32)
    mouse_dz: int = field(INT32)
    mouse_buttons: int = field(UINT8)


@state(
    name="pckbd", version=3, minimum_version=3,
    subsections=(
        # needed when the output port differs from its default, which depends on the A20 line
        Subsection("pckbd_outport", 1, as_received("pckbd_outport"), 1),
        # sent with the extended-state property (off on older machine types)
        Subsection("pckbd/extended_state", 0, as_received("pckbd/extended_state")),
    ),
)
class Kbd:
    """``vmstate_kbd`` (hw/input/pckbd.c): the i8042 controller."""

    write_cmd: int = field(UINT8)
    status: int = field(UINT8)
    mode: int = field(UINT8)
    pending_tmp: int = field(UINT8)
    outport: int = field(UINT8, subsection="pckbd_outport")
    migration_flags: int = field(UINT32, subsection="pckbd/extended_state")
    obsrc: int = field(UINT32, subsection="pckbd/extended_state")
    obdata: int = field(UINT8, subsection="pckbd/extended_state")
    cbdata: int = field(UINT8, subsection="pckbd/extended_state")
    received_subsections: frozenset[str] = received_subsections()


@state(name="pckbd", version=3, minimum_version=3)
class Pckbd:
    """QEMU's ``vmstate_kbd_isa`` (hw/input/pckbd.c): the ISA i8042."""

    kbd: Kbd = field(struct(Kbd), default=attrs.Factory(Kbd))


@state(name="vmmouse", version=0)
class Vmmouse:
    """QEMU's ``vmstate_vmmouse`` (hw/i386/vmmouse.c): the VMware backdoor mouse queue."""

    queue_size: int = field(INT32_EQUAL, default=1024)
    #: VMMOUSE_QUEUE_SIZE words
    queue: list[int] = field(array(UINT32, 1024))
    nb_queue: int = field(UINT16)
    status: int = field(UINT16)
    absolute: int = field(UINT8)


@state(name="ide bmdma", version=3, minimum_version=3)
class IdeBmdma:
    """``vmstate_bmdma`` (hw/ide/pci.c): one bus-master DMA engine.

    Its subsections (``ide bmdma_current``, ``ide bmdma/status``) are not
    described: a stream with DMA in flight keeps the section as read.
    """

    cmd: int = field(UINT8)
    migration_compat_status: int = field(UINT8)
    addr: int = field(UINT32)
    migration_retry_sector_num: int = field(INT64)
    migration_retry_nsector: int = field(UINT32)
    migration_retry_unit: int = field(UINT8)


@state(name="ide_bus", version=1, minimum_version=1)
class IdeBus:
    """``vmstate_ide_bus`` (hw/ide/core.c): the selected unit and the last command.

    ``ide_bus/error`` (a failed request being retried) is not described.
    """

    cmd: int = field(UINT8)
    unit: int = field(UINT8)


def _identify_set(view: Any, _version: int) -> bool:
    return bool(view.identify_set)


@state(
    name="ide_drive", version=3, minimum_version=3,
    subsections=(
        Subsection("ide_drive/atapi/gesn_state", 1, _nonzero("new_media", "eject_request"), 1),
        Subsection("ide_drive/tray_state", 1, _nonzero("tray_open", "tray_locked"), 1),
    ),
)
class IdeDrive:
    """``vmstate_ide_drive`` (hw/ide/core.c): one IDE unit's task file.

    The IDENTIFY data is sent only once the guest has read it
    (``is_identify_set``); ``ide_drive/pio_state`` is not described (its
    buffer length is not in the stream).
    """

    mult_sectors: int = field(INT32)
    identify_set: int = field(INT32)
    identify_data: bytes = field(buffer(512), exists=_identify_set, default=bytes(512))
    feature: int = field(UINT8)
    error: int = field(UINT8)
    nsector: int = field(UINT32)
    sector: int = field(UINT8)
    lcyl: int = field(UINT8)
    hcyl: int = field(UINT8)
    hob_feature: int = field(UINT8)
    hob_sector: int = field(UINT8)
    hob_nsector: int = field(UINT8)
    hob_lcyl: int = field(UINT8)
    hob_hcyl: int = field(UINT8)
    select: int = field(UINT8)
    status: int = field(UINT8)
    lba48: int = field(UINT8)
    sense_key: int = field(UINT8)
    asc: int = field(UINT8)
    cdrom_changed: int = field(UINT8)
    new_media: bool = field(BOOL, subsection="ide_drive/atapi/gesn_state")
    eject_request: bool = field(BOOL, subsection="ide_drive/atapi/gesn_state")
    tray_open: bool = field(BOOL, subsection="ide_drive/tray_state")
    tray_locked: bool = field(BOOL, subsection="ide_drive/tray_state")


def _pair(cls: type) -> Any:
    return attrs.Factory(lambda: [cls(), cls()])


@state(name="ide", version=3, minimum_version=3)
class PiixIde:
    """QEMU's ``vmstate_ide_pci`` (hw/ide/piix.c): PIIX3/4 IDE, two buses of two units each."""

    parent_obj: PciDevice = field(struct(PciDevice), default=attrs.Factory(PciDevice))
    bmdma: list[IdeBmdma] = field(array(struct(IdeBmdma), 2), default=_pair(IdeBmdma))
    bus: list[IdeBus] = field(array(struct(IdeBus), 2), default=_pair(IdeBus))
    bus0_ifs: list[IdeDrive] = field(array(struct(IdeDrive), 2), default=_pair(IdeDrive), name="bus[0].ifs")
    bus1_ifs: list[IdeDrive] = field(array(struct(IdeDrive), 2), default=_pair(IdeDrive), name="bus[1].ifs")


class ScsiRequests:
    """QEMU's ``vmstate_info_scsi_requests`` (hw/scsi/scsi-bus.c): the in-flight requests.

    Each request starts with a byte 1 or 2 (retry or not), followed by what
    the bus and the device save for it; a 0 byte ends the list.  We model the
    empty list, what a paused or idle device sends; a request makes the
    description give way (``UnsupportedError``) and the section is kept as read.
    """

    def decode(self, reader: ByteReader, context: CustomContext) -> list[Any]:
        start = reader.offset
        marker = reader.u8()
        if marker != 0:
            raise UnsupportedError(
                f"in-flight SCSI request (marker {marker:#04x}): not modelled", offset=start, path=context.path
            )
        return []

    def encode(self, value: Any, context: CustomContext) -> bytes:
        if value != []:
            raise EncodeError("only an empty request list can be written", path=context.path)
        return b"\x00"

    def describe(self) -> dict[str, Any]:
        return {"requests": "none (a single 0 byte); requests are not modelled"}


#: SCSI_SENSE_BUF_SIZE_OLD, SCSI_SENSE_BUF_SIZE (include/hw/scsi/scsi.h)
_SENSE_OLD = 96
_SENSE = 252


@state(
    name="SCSIDevice", version=1, minimum_version=1,
    subsections=(Subsection("SCSIDevice/sense", 1, lambda d: d.sense_len > _SENSE_OLD, 1),),
)
class ScsiDevice:
    """``vmstate_scsi_device`` (hw/scsi/scsi-bus.c): unit attention, sense data, requests."""

    unit_attention_key: int = field(UINT8, name="unit_attention.key")
    unit_attention_asc: int = field(UINT8, name="unit_attention.asc")
    unit_attention_ascq: int = field(UINT8, name="unit_attention.ascq")
    sense_is_ua: bool = field(BOOL)
    sense: bytes = field(buffer(_SENSE_OLD), default=bytes(_SENSE_OLD))
    sense_len: int = field(UINT32)
    requests: list[Any] = field(Custom(codec=ScsiRequests(), type_name="scsi-requests"), default=attrs.Factory(list))
    #: ``sense[SCSI_SENSE_BUF_SIZE_OLD..]``, QEMU's ``VMSTATE_UINT8_SUB_ARRAY``
    sense_rest: bytes = field(
        buffer(_SENSE - _SENSE_OLD), subsection="SCSIDevice/sense", default=bytes(_SENSE - _SENSE_OLD), name="sense"
    )


@state(name="scsi-disk", version=1, minimum_version=1)
class ScsiDisk:
    """QEMU's ``vmstate_scsi_disk_state`` (hw/scsi/scsi-disk.c): scsi-hd and scsi-cd."""

    qdev: ScsiDevice = field(struct(ScsiDevice), default=attrs.Factory(ScsiDevice))
    media_changed: bool = field(BOOL)
    media_event: bool = field(BOOL)
    eject_request: bool = field(BOOL)
    tray_open: bool = field(BOOL)
    tray_locked: bool = field(BOOL)
