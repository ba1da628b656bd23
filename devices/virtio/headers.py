"""Device headers and config fields that cross the guest boundary in device byte order.

Patches 14-20 of the 2.2 cross-endian series switched each device to the
virtio accessors: virtio-net headers and control payloads, balloon page
frame numbers and stats, virtio-blk requests and config, virtio-scsi
requests/responses/events, virtio-serial control messages and config, and
the virtio-9p config header.  Each class here is one such structure with
``unpack(subject, buf, offset=0)`` and ``pack(subject)``; the byte order comes
from ``is_big_endian(subject)``.  Two structures never follow the device:
the balloon config (little-endian by the balloon spec, hw/virtio/virtio-balloon.c)
and 9P protocol messages (little-endian by 9P2000.L) — those take no subject.
A short or bad buffer raises our ``DecodeError`` family with ``offset`` (in
``buf``) and ``path`` (the structure, then the field) set.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from typing import Any, ClassVar, TypeVar

import attrs

from vmstate.errors import EncodeError, MalformedError, TruncatedError

from .access import HOST_BIG_ENDIAN, Buffer, EndianSubject, is_big_endian, tswap16

__all__ = [
    # virtio-net
    "VIRTIO_NET_HDR_F_NEEDS_CSUM", "VIRTIO_NET_HDR_F_DATA_VALID",
    "VIRTIO_NET_HDR_GSO_NONE", "VIRTIO_NET_HDR_GSO_TCPV4", "VIRTIO_NET_HDR_GSO_UDP",
    "VIRTIO_NET_HDR_GSO_TCPV6", "VIRTIO_NET_HDR_GSO_ECN",
    "VIRTIO_NET_CTRL_RX", "VIRTIO_NET_CTRL_MAC", "VIRTIO_NET_CTRL_VLAN", "VIRTIO_NET_CTRL_ANNOUNCE",
    "VIRTIO_NET_CTRL_MQ", "VIRTIO_NET_CTRL_GUEST_OFFLOADS", "MAX_VLAN",
    "VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MIN", "VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MAX",
    "NetHdr", "NetHdrMrgRxbuf", "swap_net_hdr", "NetCtrlHdr", "NetMacTable", "NetVlan", "NetMqPairs",
    "NetGuestOffloads",
    # virtio-blk
    "VIRTIO_BLK_T_IN", "VIRTIO_BLK_T_OUT", "VIRTIO_BLK_T_FLUSH", "VIRTIO_BLK_T_GET_ID",
    "BlkOutHdr", "BlkConfig",
    # virtio-scsi
    "VIRTIO_SCSI_T_TRANSPORT_RESET", "VIRTIO_SCSI_T_ASYNC_NOTIFY", "VIRTIO_SCSI_T_PARAM_CHANGE",
    "VIRTIO_SCSI_T_EVENTS_MISSED", "ScsiCmdReq", "ScsiCmdResp", "ScsiEvent", "scsi_lun",
    # virtio-serial
    "VIRTIO_CONSOLE_DEVICE_READY", "VIRTIO_CONSOLE_PORT_ADD", "VIRTIO_CONSOLE_PORT_REMOVE",
    "VIRTIO_CONSOLE_PORT_READY", "VIRTIO_CONSOLE_CONSOLE_PORT", "VIRTIO_CONSOLE_RESIZE",
    "VIRTIO_CONSOLE_PORT_OPEN", "VIRTIO_CONSOLE_PORT_NAME", "SerialControl", "SerialConfig",
    # virtio-balloon
    "VIRTIO_BALLOON_PFN_SHIFT", "VIRTIO_BALLOON_S_SWAP_IN", "VIRTIO_BALLOON_S_SWAP_OUT",
    "VIRTIO_BALLOON_S_MAJFLT", "VIRTIO_BALLOON_S_MINFLT", "VIRTIO_BALLOON_S_MEMFREE",
    "VIRTIO_BALLOON_S_MEMTOT", "pack_pfns", "unpack_pfns", "pfn_to_address", "BalloonStat",
    "pack_stats", "unpack_stats", "BalloonConfig",
    # virtio-9p
    "P9_TLERROR", "P9_RLERROR", "P9_TVERSION", "P9_RVERSION", "P9_TATTACH", "P9_RATTACH",
    "P9Config", "P9Header",
]

_T = TypeVar("_T", bound="_Fixed")


def _u(bits: int) -> Callable[[Any, attrs.Attribute[int], int], None]:
    limit = (1 << bits) - 1

    def check(_instance: Any, attribute: attrs.Attribute[int], value: int) -> None:
        if not 0 <= value <= limit:
            raise EncodeError(f"{value} does not fit in {bits} bits", path=(attribute.name,))

    return check


def _bytes_of(length: int) -> Callable[[Any, attrs.Attribute[bytes], bytes], None]:
    def check(_instance: Any, attribute: attrs.Attribute[bytes], value: bytes) -> None:
        if len(value) != length:
            raise EncodeError(f"must be {length} bytes, got {len(value)}", path=(attribute.name,))

    return check


def _need(what: str, buf: Buffer, offset: int, size: int) -> None:
    if offset < 0 or len(buf) - offset < size:
        raise TruncatedError(f"expected {size} bytes, got {max(len(buf) - offset, 0)}", offset=offset, path=(what,))


def _pair(fmt: str) -> tuple[struct.Struct, struct.Struct]:
    """(little-endian, big-endian) codecs for one layout."""
    return struct.Struct("<" + fmt), struct.Struct(">" + fmt)


_CODES_U16 = _pair("H")
_CODES_U32 = _pair("I")
_CODES_U64 = _pair("Q")


class _Fixed:
    """A fixed-size structure whose multi-byte fields are in device order.

    Subclasses are attrs classes whose fields, in declaration order, are
    exactly the struct fields of ``_CODECS``.
    """

    _CODECS: ClassVar[tuple[struct.Struct, struct.Struct]]
    #: bytes on the wire
    SIZE: ClassVar[int]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.SIZE = cls._CODECS[0].size

    @classmethod
    def unpack(cls: type[_T], subject: EndianSubject, buf: Buffer, offset: int = 0) -> _T:
        """Decode from ``buf[offset:]`` in the subject's device order; extra bytes are left alone."""
        codec = cls._CODECS[is_big_endian(subject)]
        _need(cls.__name__, buf, offset, codec.size)
        names = [a.name for a in attrs.fields(cls)]  # type: ignore[arg-type]
        return cls(**dict(zip(names, codec.unpack_from(buf, offset))))

    def pack(self, subject: EndianSubject) -> bytes:
        """Encode in the subject's device order."""
        return self._CODECS[is_big_endian(subject)].pack(*attrs.astuple(self, recurse=False))  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# virtio-net (hw/net/virtio-net.c; include/standard-headers/linux/virtio_net.h)

VIRTIO_NET_HDR_F_NEEDS_CSUM = 1
VIRTIO_NET_HDR_F_DATA_VALID = 2
VIRTIO_NET_HDR_GSO_NONE = 0
VIRTIO_NET_HDR_GSO_TCPV4 = 1
VIRTIO_NET_HDR_GSO_UDP = 3
VIRTIO_NET_HDR_GSO_TCPV6 = 4
VIRTIO_NET_HDR_GSO_ECN = 0x80

VIRTIO_NET_CTRL_RX = 0
VIRTIO_NET_CTRL_MAC = 1
VIRTIO_NET_CTRL_VLAN = 2
VIRTIO_NET_CTRL_ANNOUNCE = 3
VIRTIO_NET_CTRL_MQ = 4
VIRTIO_NET_CTRL_GUEST_OFFLOADS = 5
#: VLAN ids are 12 bits; the device refuses larger ones
MAX_VLAN = 4096
VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MIN = 1
VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MAX = 0x8000

_ETH_ALEN = 6


@attrs.frozen(kw_only=True)
class NetHdr(_Fixed):
    """``struct virtio_net_hdr`` (10 bytes); flags and gso_type are bytes, never swapped."""

    _CODECS = _pair("BBHHHH")

    flags: int = attrs.field(default=0, validator=_u(8))
    gso_type: int = attrs.field(default=VIRTIO_NET_HDR_GSO_NONE, validator=_u(8))
    hdr_len: int = attrs.field(default=0, validator=_u(16))
    gso_size: int = attrs.field(default=0, validator=_u(16))
    csum_start: int = attrs.field(default=0, validator=_u(16))
    csum_offset: int = attrs.field(default=0, validator=_u(16))


@attrs.frozen(kw_only=True)
class NetHdrMrgRxbuf:
    """``struct virtio_net_hdr_mrg_rxbuf`` (12 bytes): the header plus num_buffers.

    With VIRTIO_NET_F_MRG_RXBUF the device fills num_buffers with how many
    rx buffers one packet spans (QEMU writes it with virtio_stw_p).
    """

    hdr: NetHdr = attrs.field(factory=NetHdr)
    num_buffers: int = attrs.field(default=1, validator=_u(16))

    SIZE: ClassVar[int] = 12

    @classmethod
    def unpack(cls, subject: EndianSubject, buf: Buffer, offset: int = 0) -> NetHdrMrgRxbuf:
        _need(cls.__name__, buf, offset, cls.SIZE)
        hdr = NetHdr.unpack(subject, buf, offset)
        codec = _CODES_U16[is_big_endian(subject)]
        return cls(hdr=hdr, num_buffers=codec.unpack_from(buf, offset + NetHdr.SIZE)[0])

    def pack(self, subject: EndianSubject) -> bytes:
        return self.hdr.pack(subject) + _CODES_U16[is_big_endian(subject)].pack(self.num_buffers)


def swap_net_hdr(subject: EndianSubject, raw: Buffer, *, host_big_endian: bool | None = None) -> bytes:
    """Convert a virtio_net_hdr between device order and host order, both ways.

    A tap backend with a vnet header expects host order; QEMU's
    ``virtio_net_hdr_swap`` applies virtio_tswap16 to hdr_len, gso_size,
    csum_start and csum_offset on rx and tx.  Only the first 10 bytes are
    converted (num_buffers is written separately with virtio_stw_p);
    the rest of ``raw`` is returned unchanged.
    """
    _need("virtio_net_hdr", raw, 0, NetHdr.SIZE)
    host = HOST_BIG_ENDIAN if host_big_endian is None else host_big_endian
    out = bytearray(raw)
    codec = _CODES_U16[host]
    for offset in (2, 4, 6, 8):
        value = codec.unpack_from(out, offset)[0]
        codec.pack_into(out, offset, tswap16(subject, value, host_big_endian=host))
    return bytes(out)


@attrs.frozen(kw_only=True)
class NetCtrlHdr:
    """``struct virtio_net_ctrl_hdr``: class and command bytes (no byte order)."""

    class_: int = attrs.field(validator=_u(8))
    cmd: int = attrs.field(validator=_u(8))

    @classmethod
    def unpack(cls, buf: Buffer, offset: int = 0) -> NetCtrlHdr:
        _need(cls.__name__, buf, offset, 2)
        return cls(class_=buf[offset], cmd=buf[offset + 1])

    def pack(self) -> bytes:
        return bytes((self.class_, self.cmd))


def _to_macs(value: Iterable[bytes]) -> tuple[bytes, ...]:
    return tuple(bytes(mac) for mac in value)


@attrs.frozen(kw_only=True)
class NetMacTable:
    """``struct virtio_net_ctrl_mac``: a u32 entry count then that many MACs.

    VIRTIO_NET_CTRL_MAC_TABLE_SET carries two of these back to back
    (unicast, then multicast); ``size`` tells where the next one starts.
    The count is checked against the bytes present before anything is
    sliced (QEMU: ``iov_size < entries * ETH_ALEN`` is an error).
    """

    macs: tuple[bytes, ...] = attrs.field(default=(), converter=_to_macs)

    @macs.validator
    def _check(self, _attribute: attrs.Attribute[tuple[bytes, ...]], value: tuple[bytes, ...]) -> None:
        if any(len(mac) != _ETH_ALEN for mac in value):
            raise EncodeError("every MAC address must be 6 bytes")
        if len(value) > 0xFFFFFFFF:
            raise EncodeError("too many MAC addresses for a u32 count")

    @property
    def size(self) -> int:
        """Bytes on the wire: the count plus the addresses."""
        return 4 + _ETH_ALEN * len(self.macs)

    @classmethod
    def unpack(cls, subject: EndianSubject, buf: Buffer, offset: int = 0) -> NetMacTable:
        _need(cls.__name__, buf, offset, 4)
        entries = _CODES_U32[is_big_endian(subject)].unpack_from(buf, offset)[0]
        available = (len(buf) - offset - 4) // _ETH_ALEN
        if entries > available:
            raise TruncatedError(f"the table claims {entries} entries, only {available} present",
                                 offset=offset + 4, path=(cls.__name__, "macs"))
        start = offset + 4
        return cls(macs=tuple(bytes(buf[start + i * _ETH_ALEN : start + (i + 1) * _ETH_ALEN]) for i in range(entries)))

    def pack(self, subject: EndianSubject) -> bytes:
        return _CODES_U32[is_big_endian(subject)].pack(len(self.macs)) + b"".join(self.macs)


@attrs.frozen(kw_only=True)
class NetVlan(_Fixed):
    """The u16 VLAN id of VIRTIO_NET_CTRL_VLAN_ADD / _DEL (valid ids are < MAX_VLAN)."""

    _CODECS = _CODES_U16

    vid: int = attrs.field(validator=_u(16))


@attrs.frozen(kw_only=True)
class NetMqPairs(_Fixed):
    """``struct virtio_net_ctrl_mq``: virtqueue_pairs (u16) of VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET."""

    _CODECS = _CODES_U16

    virtqueue_pairs: int = attrs.field(validator=_u(16))


@attrs.frozen(kw_only=True)
class NetGuestOffloads(_Fixed):
    """The u64 offload bitmap of VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET."""

    _CODECS = _CODES_U64

    offloads: int = attrs.field(validator=_u(64))


# --------------------------------------------------------------------------------------------
# virtio-blk (hw/block/virtio-blk.c)

VIRTIO_BLK_T_IN = 0
VIRTIO_BLK_T_OUT = 1
VIRTIO_BLK_T_FLUSH = 4
VIRTIO_BLK_T_GET_ID = 8


@attrs.frozen(kw_only=True)
class BlkOutHdr(_Fixed):
    """``struct virtio_blk_outhdr`` (16 bytes): QEMU reads type and sector with virtio_ldl_p/ldq_p."""

    _CODECS = _pair("IIQ")

    type: int = attrs.field(validator=_u(32))
    ioprio: int = attrs.field(default=0, validator=_u(32))
    sector: int = attrs.field(default=0, validator=_u(64))


@attrs.frozen(kw_only=True)
class BlkConfig(_Fixed):
    """``struct virtio_blk_config`` up to and including ``wce`` (33 bytes).

    Later fields (num_queues, discard and write-zeroes limits) are not
    modelled.  Legacy devices expose capacity and the size fields in device
    order (QEMU's get_config uses virtio_stq_p / virtio_stl_p / virtio_stw_p).
    """

    _CODECS = _pair("QIIHBBIBBHIB")

    #: in 512-byte sectors
    capacity: int = attrs.field(validator=_u(64))
    size_max: int = attrs.field(default=0, validator=_u(32))
    seg_max: int = attrs.field(default=0, validator=_u(32))
    cylinders: int = attrs.field(default=0, validator=_u(16))
    heads: int = attrs.field(default=0, validator=_u(8))
    sectors: int = attrs.field(default=0, validator=_u(8))
    blk_size: int = attrs.field(default=512, validator=_u(32))
    physical_block_exp: int = attrs.field(default=0, validator=_u(8))
    alignment_offset: int = attrs.field(default=0, validator=_u(8))
    min_io_size: int = attrs.field(default=0, validator=_u(16))
    opt_io_size: int = attrs.field(default=0, validator=_u(32))
    wce: int = attrs.field(default=0, validator=_u(8))


# --------------------------------------------------------------------------------------------
# virtio-scsi (hw/scsi/virtio-scsi.c)

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


# --------------------------------------------------------------------------------------------
# virtio-serial (hw/char/virtio-serial-bus.c)

VIRTIO_CONSOLE_DEVICE_READY = 0
VIRTIO_CONSOLE_PORT_ADD = 1
VIRTIO_CONSOLE_PORT_REMOVE = 2
VIRTIO_CONSOLE_PORT_READY = 3
VIRTIO_CONSOLE_CONSOLE_PORT = 4
VIRTIO_CONSOLE_RESIZE = 5
VIRTIO_CONSOLE_PORT_OPEN = 6
VIRTIO_CONSOLE_PORT_NAME = 7


@attrs.frozen(kw_only=True)
class SerialControl(_Fixed):
    """``struct virtio_console_control`` (8 bytes): port id, event, value."""

    _CODECS = _pair("IHH")

    id: int = attrs.field(validator=_u(32))
    event: int = attrs.field(validator=_u(16))
    value: int = attrs.field(default=0, validator=_u(16))


@attrs.frozen(kw_only=True)
class SerialConfig(_Fixed):
    """``struct virtio_console_config`` (12 bytes).

    The migration stream still carries cols/rows/max_nr_ports of this
    device-order config, written with big-endian puts and skipped on load
    (docs: virtio-migration-format.md §4).
    """

    _CODECS = _pair("HHII")

    cols: int = attrs.field(default=0, validator=_u(16))
    rows: int = attrs.field(default=0, validator=_u(16))
    max_nr_ports: int = attrs.field(default=1, validator=_u(32))
    emerg_wr: int = attrs.field(default=0, validator=_u(32))


# --------------------------------------------------------------------------------------------
# virtio-balloon (hw/virtio/virtio-balloon.c)

#: a PFN counts 4 KiB pages whatever the guest page size
VIRTIO_BALLOON_PFN_SHIFT = 12
VIRTIO_BALLOON_S_SWAP_IN = 0
VIRTIO_BALLOON_S_SWAP_OUT = 1
VIRTIO_BALLOON_S_MAJFLT = 2
VIRTIO_BALLOON_S_MINFLT = 3
VIRTIO_BALLOON_S_MEMFREE = 4
VIRTIO_BALLOON_S_MEMTOT = 5


def pack_pfns(subject: EndianSubject, pfns: Iterable[int]) -> bytes:
    """Encode an inflate/deflate buffer: u32 page frame numbers in device order."""
    codec = _CODES_U32[is_big_endian(subject)]
    out = bytearray()
    for pfn in pfns:
        if not 0 <= pfn <= 0xFFFFFFFF:
            raise EncodeError(f"page frame number {pfn} does not fit in 32 bits")
        out += codec.pack(pfn)
    return bytes(out)


def unpack_pfns(subject: EndianSubject, buf: Buffer) -> tuple[int, ...]:
    """Decode an inflate/deflate buffer; a trailing partial PFN is ignored, as QEMU does."""
    order = ">" if is_big_endian(subject) else "<"
    return struct.unpack_from(f"{order}{len(buf) // 4}I", buf)


def pfn_to_address(pfn: int) -> int:
    """The guest-physical address a balloon PFN names."""
    return pfn << VIRTIO_BALLOON_PFN_SHIFT


@attrs.frozen(kw_only=True)
class BalloonStat(_Fixed):
    """``struct virtio_balloon_stat``, packed (10 bytes): tag u16, val u64."""

    _CODECS = _pair("HQ")

    tag: int = attrs.field(validator=_u(16))
    val: int = attrs.field(validator=_u(64))


def pack_stats(subject: EndianSubject, stats: Iterable[BalloonStat]) -> bytes:
    """Encode a stats buffer."""
    return b"".join(stat.pack(subject) for stat in stats)


def unpack_stats(subject: EndianSubject, buf: Buffer) -> tuple[BalloonStat, ...]:
    """Decode a stats buffer; unknown tags are kept, a trailing partial entry is ignored (as QEMU)."""
    step = BalloonStat.SIZE
    return tuple(BalloonStat.unpack(subject, buf, offset) for offset in range(0, len(buf) - step + 1, step))


@attrs.frozen(kw_only=True)
class BalloonConfig:
    """``struct virtio_balloon_config``: always little-endian, even for legacy devices.

    The balloon spec makes num_pages and actual LE; QEMU's balloon
    get_config/set_config use cpu_to_le32/le32_to_cpu, not the virtio
    accessors, so no subject is taken.
    """

    _CODEC: ClassVar[struct.Struct] = struct.Struct("<II")
    SIZE: ClassVar[int] = 8

    num_pages: int = attrs.field(default=0, validator=_u(32))
    actual: int = attrs.field(default=0, validator=_u(32))

    @classmethod
    def unpack(cls, buf: Buffer, offset: int = 0) -> BalloonConfig:
        _need(cls.__name__, buf, offset, cls._CODEC.size)
        num_pages, actual = cls._CODEC.unpack_from(buf, offset)
        return cls(num_pages=num_pages, actual=actual)

    def pack(self) -> bytes:
        return self._CODEC.pack(self.num_pages, self.actual)


# --------------------------------------------------------------------------------------------
# virtio-9p (hw/9pfs/virtio-9p-device.c)

P9_TLERROR = 6
P9_RLERROR = 7
P9_TVERSION = 100
P9_RVERSION = 101
P9_TATTACH = 104
P9_RATTACH = 105


@attrs.frozen(kw_only=True)
class P9Config:
    """``struct virtio_9p_config``: tag_len (u16, device order) then the mount tag, no NUL.

    This is the 9p structure the 2.2 series moved to virtio_stw_p.
    """

    tag: bytes = attrs.field()

    @tag.validator
    def _check(self, _attribute: attrs.Attribute[bytes], value: bytes) -> None:
        if len(value) > 0xFFFF:
            raise EncodeError("a 9p mount tag is at most 65535 bytes")

    @property
    def size(self) -> int:
        """Bytes on the wire: tag_len plus the tag."""
        return 2 + len(self.tag)

    @classmethod
    def unpack(cls, subject: EndianSubject, buf: Buffer, offset: int = 0) -> P9Config:
        _need(cls.__name__, buf, offset, 2)
        length = _CODES_U16[is_big_endian(subject)].unpack_from(buf, offset)[0]
        _need("9p mount tag", buf, offset + 2, length)
        return cls(tag=bytes(buf[offset + 2 : offset + 2 + length]))

    def pack(self, subject: EndianSubject) -> bytes:
        return _CODES_U16[is_big_endian(subject)].pack(len(self.tag)) + self.tag


@attrs.frozen(kw_only=True)
class P9Header:
    """A 9P2000.L message header: size u32, type u8, tag u16 — always little-endian.

    9P defines its own byte order, so the device endianness never applies
    (hw/9pfs marshals with le helpers).  ``size`` counts the whole message,
    header included, so it is at least 7.
    """

    _CODEC: ClassVar[struct.Struct] = struct.Struct("<IBH")
    SIZE: ClassVar[int] = 7

    size: int = attrs.field(validator=_u(32))
    type: int = attrs.field(validator=_u(8))
    tag: int = attrs.field(default=0xFFFF, validator=_u(16))

    @classmethod
    def unpack(cls, buf: Buffer, offset: int = 0) -> P9Header:
        _need(cls.__name__, buf, offset, cls._CODEC.size)
        size, type_, tag = cls._CODEC.unpack_from(buf, offset)
        if size < cls._CODEC.size:
            raise MalformedError(f"9P message size {size} is smaller than its 7-byte header",
                                 offset=offset, path=(cls.__name__, "size"))
        return cls(size=size, type=type_, tag=tag)

    def pack(self) -> bytes:
        return self._CODEC.pack(self.size, self.type, self.tag)
