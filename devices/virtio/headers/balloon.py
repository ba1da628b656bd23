"""virtio-balloon headers and config fields in device byte order (hw/virtio/virtio-balloon.c)."""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import ClassVar

import attrs

from vmstate.errors import EncodeError

from ..access import Buffer, EndianSubject, is_big_endian
from ._fixed import _CODES_U32, _Fixed, _need, _pair, _u

__all__ = [
    "pack_pfns", "unpack_pfns", "pfn_to_address", "BalloonStat", "pack_stats", "unpack_stats", "BalloonConfig",
    "VIRTIO_BALLOON_PFN_SHIFT", "VIRTIO_BALLOON_S_SWAP_IN", "VIRTIO_BALLOON_S_SWAP_OUT", "VIRTIO_BALLOON_S_MAJFLT",
    "VIRTIO_BALLOON_S_MINFLT", "VIRTIO_BALLOON_S_MEMFREE", "VIRTIO_BALLOON_S_MEMTOT",
]


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
