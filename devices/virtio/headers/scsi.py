"""virtio-scsi headers and config fields in device byte order (hw/scsi/virtio-scsi.c)."""

from __future__ import annotations

import attrs

from vmstate.errors import EncodeError

from ._fixed import _bytes_of, _Fixed, _pair, _u

__all__ = [
    "scsi_lun", "ScsiCmdReq", "ScsiCmdResp", "ScsiEvent", "VIRTIO_SCSI_T_TRANSPORT_RESET",
    "VIRTIO_SCSI_T_ASYNC_NOTIFY", "VIRTIO_SCSI_T_PARAM_CHANGE", "VIRTIO_SCSI_T_EVENTS_MISSED",
]


VIRTIO_SCSI_T_TRANSPORT_RESET = 1
VIRTIO_SCSI_T_ASYNC_NOTIFY = 2
VIRTIO_SCSI_T_PARAM_CHANGE = 3
#: or-ed into an event when the device dropped events for lack of buffers
VIRTIO_SCSI_T_EVENTS_MISSED = 0x80000000

_LUN = _bytes_of(8)


def scsi_lun(target: int, lun: int) -> bytes:
    """The 8-byte virtio-scsi LUN field: 1, target, then the flat-space LUN (SAM big-endian, never swapped)."""
    if not 0 <= target <= 0xFF or not 0 <= lun <= 0x3FFF:
        raise EncodeError(f"target {target} or lun {lun} out of range")
    return bytes((1, target, 0x40 | lun >> 8, lun & 0xFF, 0, 0, 0, 0))


@attrs.frozen(kw_only=True)
class ScsiCmdReq(_Fixed):
    """``struct virtio_scsi_cmd_req`` up to the CDB (19 bytes).

    The tag is a __virtio64 in the spec; QEMU itself passes it on untouched
    as an opaque request id.  The LUN bytes are SAM format, not device order.
    """

    _CODECS = _pair("8sQBBB")

    lun: bytes = attrs.field(validator=_LUN)
    tag: int = attrs.field(default=0, validator=_u(64))
    task_attr: int = attrs.field(default=0, validator=_u(8))
    prio: int = attrs.field(default=0, validator=_u(8))
    crn: int = attrs.field(default=0, validator=_u(8))

    @property
    def target(self) -> int:
        return self.lun[1]

    @property
    def lun_id(self) -> int:
        """QEMU's ``virtio_scsi_get_lun``: the 14-bit flat-space LUN."""
        return (self.lun[2] << 8 | self.lun[3]) & 0x3FFF


@attrs.frozen(kw_only=True)
class ScsiCmdResp(_Fixed):
    """``struct virtio_scsi_cmd_resp`` without the sense bytes (12 bytes)."""

    _CODECS = _pair("IIHBB")

    sense_len: int = attrs.field(default=0, validator=_u(32))
    resid: int = attrs.field(default=0, validator=_u(32))
    status_qualifier: int = attrs.field(default=0, validator=_u(16))
    status: int = attrs.field(default=0, validator=_u(8))
    response: int = attrs.field(default=0, validator=_u(8))


@attrs.frozen(kw_only=True)
class ScsiEvent(_Fixed):
    """``struct virtio_scsi_event`` (16 bytes): event and reason in device order."""

    _CODECS = _pair("I8sI")

    event: int = attrs.field(validator=_u(32))
    lun: bytes = attrs.field(default=bytes(8), validator=_LUN)
    reason: int = attrs.field(default=0, validator=_u(32))
