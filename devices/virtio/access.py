"""Endian-aware virtio accessors over a sparse model of guest memory.

The Python counterpart of QEMU's include/hw/virtio/virtio-access.h (added by
the 2.2 cross-endian series): every multi-byte value a legacy device shares
with its driver (rings, headers, config) is in the *device* byte order, which
is little-endian once VIRTIO_F_VERSION_1 is negotiated and otherwise the
guest's byte order as sampled at reset (``device_endian``).
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Iterable, Iterator
from typing import Protocol

import attrs

from devices.cpu import Endian, Target
from vmstate.errors import (
    DescriptionError,
    EncodeError,
    LimitExceededError,
    MalformedError,
    TruncatedError,
)
from vmstate.limits import DEFAULT_LIMITS

from .features import VIRTIO_F_VERSION_1

__all__ = [
    "HOST_BIG_ENDIAN",
    "VIRTIO_F_VERSION_1",
    "Buffer",
    "DeviceEndianUnknownError",
    "EndianState",
    "EndianSubject",
    "GuestMemory",
    "GuestMemoryError",
    "GuestMemoryLimitError",
    "device_endian_needed",
    "is_big_endian",
    "ldl_p",
    "ldl_phys",
    "ldq_p",
    "ldq_phys",
    "lduw_p",
    "lduw_phys",
    "stl_p",
    "stl_phys",
    "stq_p",
    "stq_phys",
    "stw_p",
    "stw_phys",
    "tswap16",
    "tswap32",
    "tswap64",
]

#: byte order of the machine running this code (QEMU's HOST_BIG_ENDIAN)
HOST_BIG_ENDIAN = sys.byteorder == "big"

_U64_MAX = (1 << 64) - 1


class DeviceEndianUnknownError(DescriptionError):
    """An accessor consulted ``device_endian`` while it was still UNKNOWN.

    UNKNOWN is the poison value ``virtio_load`` sets before reading the
    subsections; QEMU asserts it is never used (hw/virtio/virtio.c,
    ``virtio_is_big_endian``).  Seeing it means rings or headers were touched
    before the load settled the device's endianness.
    """


class GuestMemoryError(MalformedError):
    """A guest-physical access falls outside the modelled RAM."""

    def __init__(self, message: str, *, address: int, length: int) -> None:
        super().__init__(message)
        self.address = address
        self.length = length


class GuestMemoryLimitError(LimitExceededError):
    """A guest-physical access longer than the memory model's ``max_access``."""

    def __init__(self, message: str, *, address: int, length: int) -> None:
        super().__init__(message)
        self.address = address
        self.length = length


class EndianSubject(Protocol):
    """What the accessors need to know about a virtio device."""

    @property
    def device_endian(self) -> Endian: ...

    @property
    def guest_features(self) -> int: ...

    @property
    def target(self) -> Target: ...


def _check_features(_instance: object, _attribute: attrs.Attribute[int], value: int) -> None:
    if not 0 <= value <= _U64_MAX:
        raise DescriptionError(f"guest_features must fit in 64 bits, got {value:#x}")


@attrs.frozen(kw_only=True)
class EndianState:
    """A minimal EndianSubject: the endian-relevant part of a VirtIODevice."""

    target: Target
    device_endian: Endian
    guest_features: int = attrs.field(default=0, validator=_check_features)

    @classmethod
    def legacy(cls, target: Target, device_endian: Endian | None = None) -> EndianState:
        """A legacy device; ``device_endian`` defaults to the target's order."""
        return cls(target=target, device_endian=target.default_endian if device_endian is None else device_endian)

    @classmethod
    def modern(cls, target: Target, device_endian: Endian | None = None) -> EndianState:
        """A device that negotiated VIRTIO_F_VERSION_1."""
        endian = target.default_endian if device_endian is None else device_endian
        return cls(target=target, device_endian=endian, guest_features=1 << VIRTIO_F_VERSION_1)


def _is_modern(subject: EndianSubject) -> bool:
    return bool(subject.guest_features >> VIRTIO_F_VERSION_1 & 1)


def _known(subject: EndianSubject) -> Endian:
    endian = subject.device_endian
    if endian == Endian.UNKNOWN:
        raise DeviceEndianUnknownError(
            "device_endian is UNKNOWN (only valid while loading, before the virtio subsections)"
        )
    return Endian(endian)


def is_big_endian(subject: EndianSubject) -> bool:
    """Return whether the device's shared memory is big-endian.

    QEMU ≥ 2.4 ``virtio_access_is_big_endian``: VIRTIO_F_VERSION_1 → little;
    a bi-endian target (ppc64, arm, aarch64) → ``device_endian == BIG``; any
    other target → its compile-time order (``device_endian`` not consulted).
    """
    if _is_modern(subject):
        return False
    if subject.target.bi_endian:
        return _known(subject) == Endian.BIG
    return subject.target.big_endian


def device_endian_needed(subject: EndianSubject) -> bool:
    """Return whether the ``virtio/device_endian`` subsection is written.

    QEMU 7.2 ``virtio_device_endian_needed``: with VERSION_1 negotiated,
    whenever device_endian is not LITTLE; for a legacy device, whenever it
    differs from the target default (the whole 2.2 rule, since a 2.2 device
    never negotiates VERSION_1).
    """
    endian = _known(subject)
    if _is_modern(subject):
        return endian != Endian.LITTLE
    return endian != subject.target.default_endian


class GuestMemory:
    """Sparse guest-physical RAM: pages materialise on first write.

    Reads of never-written memory return zeros.  Every access is checked
    against ``size`` (the guest's RAM size) and ``max_access`` (the largest
    single read or write, so a length from the guest cannot make us allocate
    without bound) before anything is allocated.
    """

    __slots__ = ("_max_access", "_page_size", "_pages", "_size")

    def __init__(self, size: int, *, page_size: int = 4096, max_access: int = DEFAULT_LIMITS.max_buffer) -> None:
        if page_size <= 0 or page_size & (page_size - 1) or page_size > DEFAULT_LIMITS.max_page_size:
            raise DescriptionError(f"page size must be a power of two ≤ {DEFAULT_LIMITS.max_page_size}, got {page_size}")
        if size < 0 or max_access < 0:
            raise DescriptionError("size and max_access must not be negative")
        self._pages: dict[int, bytearray] = {}
        self._page_size = page_size
        self._size = size
        self._max_access = max_access

    @classmethod
    def from_pages(
        cls, pages: Iterable[tuple[int, bytes]], *, size: int, page_size: int = 4096,
        max_access: int = DEFAULT_LIMITS.max_buffer,
    ) -> GuestMemory:
        """Build memory from ``(guest address, bytes)`` pairs, e.g. RAM pages of a stream."""
        memory = cls(size, page_size=page_size, max_access=max_access)
        for address, data in pages:
            memory.write(address, data)
        return memory

    @property
    def size(self) -> int:
        return self._size

    @property
    def page_size(self) -> int:
        return self._page_size

    @property
    def page_count(self) -> int:
        """How many pages have been materialised."""
        return len(self._pages)

    def pages(self) -> Iterator[tuple[int, bytes]]:
        """Yield ``(address, page bytes)`` for every materialised page, by address."""
        for number in sorted(self._pages):
            yield number * self._page_size, bytes(self._pages[number])

    def _check(self, address: int, length: int) -> None:
        if length < 0:
            raise GuestMemoryError(f"negative access length {length}", address=address, length=length)
        if length > self._max_access:
            raise GuestMemoryLimitError(
                f"guest memory access of {length} bytes at {address:#x} exceeds max_access ({self._max_access})",
                address=address, length=length,
            )
        if address < 0 or address + length > self._size:
            raise GuestMemoryError(
                f"guest access {address:#x}+{length} is outside RAM of {self._size:#x} bytes",
                address=address, length=length,
            )

    def read(self, address: int, length: int) -> bytes:
        """Return ``length`` bytes at ``address``; unwritten bytes read as zero."""
        self._check(address, length)
        out = bytearray(length)
        view = memoryview(out)
        size = self._page_size
        pos = 0
        while pos < length:
            number, offset = divmod(address + pos, size)
            count = min(size - offset, length - pos)
            page = self._pages.get(number)
            if page is not None:
                view[pos : pos + count] = page[offset : offset + count]
            pos += count
        return bytes(out)

    def write(self, address: int, data: bytes | bytearray | memoryview) -> None:
        """Store ``data`` at ``address``, across page boundaries if needed."""
        data = memoryview(data).cast("B")
        length = len(data)
        self._check(address, length)
        size = self._page_size
        pos = 0
        while pos < length:
            number, offset = divmod(address + pos, size)
            count = min(size - offset, length - pos)
            page = self._pages.get(number)
            if page is None:
                page = self._pages[number] = bytearray(size)
            page[offset : offset + count] = data[pos : pos + count]
            pos += count


# (width in bytes, big-endian) -> codec; precompiled once
_CODECS: dict[tuple[int, bool], struct.Struct] = {
    (width, big): struct.Struct((">" if big else "<") + code)
    for width, code in ((2, "H"), (4, "I"), (8, "Q"))
    for big in (False, True)
}


def _codec(subject: EndianSubject, width: int) -> struct.Struct:
    return _CODECS[width, is_big_endian(subject)]


def _check_value(value: int, width: int) -> None:
    if not 0 <= value < 1 << (8 * width):
        raise EncodeError(f"{value} does not fit in an unsigned {8 * width}-bit field")


def _ld_phys(subject: EndianSubject, memory: GuestMemory, address: int, width: int) -> int:
    codec = _codec(subject, width)
    value: int = codec.unpack(memory.read(address, width))[0]
    return value


def _st_phys(subject: EndianSubject, memory: GuestMemory, address: int, value: int, width: int) -> None:
    _check_value(value, width)
    memory.write(address, _codec(subject, width).pack(value))


def lduw_phys(subject: EndianSubject, memory: GuestMemory, address: int) -> int:
    """Load a device-order u16 from guest memory (``virtio_lduw_phys``)."""
    return _ld_phys(subject, memory, address, 2)


def ldl_phys(subject: EndianSubject, memory: GuestMemory, address: int) -> int:
    """Load a device-order u32 from guest memory (``virtio_ldl_phys``)."""
    return _ld_phys(subject, memory, address, 4)


def ldq_phys(subject: EndianSubject, memory: GuestMemory, address: int) -> int:
    """Load a device-order u64 from guest memory (``virtio_ldq_phys``)."""
    return _ld_phys(subject, memory, address, 8)


def stw_phys(subject: EndianSubject, memory: GuestMemory, address: int, value: int) -> None:
    """Store a u16 in device order to guest memory (``virtio_stw_phys``)."""
    _st_phys(subject, memory, address, value, 2)


def stl_phys(subject: EndianSubject, memory: GuestMemory, address: int, value: int) -> None:
    """Store a u32 in device order to guest memory (``virtio_stl_phys``)."""
    _st_phys(subject, memory, address, value, 4)


def stq_phys(subject: EndianSubject, memory: GuestMemory, address: int, value: int) -> None:
    """Store a u64 in device order to guest memory (QEMU ≥ 2.4 ``virtio_stq_phys``)."""
    _st_phys(subject, memory, address, value, 8)


#: what the pointer loads read from
Buffer = bytes | bytearray | memoryview


def _ld_p(subject: EndianSubject, buf: Buffer, offset: int, width: int) -> int:
    if offset < 0 or offset + width > len(buf):
        raise TruncatedError(f"expected {width} bytes, got {max(len(buf) - offset, 0)}", offset=offset)
    value: int = _codec(subject, width).unpack_from(buf, offset)[0]
    return value


def _st_p(subject: EndianSubject, buf: bytearray | memoryview, offset: int, value: int, width: int) -> None:
    _check_value(value, width)
    if offset < 0 or offset + width > len(buf):
        raise EncodeError(f"no room for {width} bytes at buffer offset {offset}, buffer has {len(buf)}")
    _codec(subject, width).pack_into(buf, offset, value)


def lduw_p(subject: EndianSubject, buf: Buffer, offset: int = 0) -> int:
    """Load a device-order u16 from a host buffer (``virtio_lduw_p``)."""
    return _ld_p(subject, buf, offset, 2)


def ldl_p(subject: EndianSubject, buf: Buffer, offset: int = 0) -> int:
    """Load a device-order u32 from a host buffer (``virtio_ldl_p``)."""
    return _ld_p(subject, buf, offset, 4)


def ldq_p(subject: EndianSubject, buf: Buffer, offset: int = 0) -> int:
    """Load a device-order u64 from a host buffer (``virtio_ldq_p``)."""
    return _ld_p(subject, buf, offset, 8)


def stw_p(subject: EndianSubject, buf: bytearray | memoryview, offset: int, value: int) -> None:
    """Store a u16 in device order into a host buffer (``virtio_stw_p``)."""
    _st_p(subject, buf, offset, value, 2)


def stl_p(subject: EndianSubject, buf: bytearray | memoryview, offset: int, value: int) -> None:
    """Store a u32 in device order into a host buffer (``virtio_stl_p``)."""
    _st_p(subject, buf, offset, value, 4)


def stq_p(subject: EndianSubject, buf: bytearray | memoryview, offset: int, value: int) -> None:
    """Store a u64 in device order into a host buffer (``virtio_stq_p``)."""
    _st_p(subject, buf, offset, value, 8)


def _tswap(subject: EndianSubject, value: int, width: int, host_big_endian: bool | None) -> int:
    _check_value(value, width)
    host = HOST_BIG_ENDIAN if host_big_endian is None else host_big_endian
    if is_big_endian(subject) == host:
        return value
    return int.from_bytes(value.to_bytes(width, "little"), "big")


def tswap16(subject: EndianSubject, value: int, *, host_big_endian: bool | None = None) -> int:
    """Convert a u16 between host order and device order (``virtio_tswap16``).

    A no-op when the host and the device agree, a byte swap otherwise; the
    same call converts in both directions.  ``host_big_endian`` defaults to
    this machine's order and can be set to simulate the other kind of host.
    """
    return _tswap(subject, value, 2, host_big_endian)


def tswap32(subject: EndianSubject, value: int, *, host_big_endian: bool | None = None) -> int:
    """Convert a u32 between host order and device order (``virtio_tswap32``)."""
    return _tswap(subject, value, 4, host_big_endian)


def tswap64(subject: EndianSubject, value: int, *, host_big_endian: bool | None = None) -> int:
    """Convert a u64 between host order and device order (``virtio_tswap64``)."""
    return _tswap(subject, value, 8, host_big_endian)
