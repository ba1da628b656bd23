"""virtio-net headers and config fields in device byte order (hw/net/virtio-net.c; include/standard-headers/linux/virtio_net.h)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

import attrs

from vmstate.errors import EncodeError, TruncatedError

from ..access import HOST_BIG_ENDIAN, Buffer, EndianSubject, is_big_endian, tswap16
from ._fixed import _CODES_U16, _CODES_U32, _CODES_U64, _Fixed, _need, _pair, _u

__all__ = [
    "NetHdr", "NetHdrMrgRxbuf", "swap_net_hdr", "NetCtrlHdr", "NetMacTable", "NetVlan", "NetMqPairs",
    "NetGuestOffloads", "VIRTIO_NET_HDR_F_NEEDS_CSUM", "VIRTIO_NET_HDR_F_DATA_VALID", "VIRTIO_NET_HDR_GSO_NONE",
    "VIRTIO_NET_HDR_GSO_TCPV4", "VIRTIO_NET_HDR_GSO_UDP", "VIRTIO_NET_HDR_GSO_TCPV6", "VIRTIO_NET_HDR_GSO_ECN",
    "VIRTIO_NET_CTRL_RX", "VIRTIO_NET_CTRL_MAC", "VIRTIO_NET_CTRL_VLAN", "VIRTIO_NET_CTRL_ANNOUNCE",
    "VIRTIO_NET_CTRL_MQ", "VIRTIO_NET_CTRL_GUEST_OFFLOADS", "MAX_VLAN", "VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MIN",
    "VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MAX",
]


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
