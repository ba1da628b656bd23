"""virtio-9p headers and config fields in device byte order (hw/9pfs/virtio-9p-device.c)."""

from __future__ import annotations

import struct
from typing import ClassVar

import attrs

from vmstate.errors import EncodeError, MalformedError

from ..access import Buffer, EndianSubject, is_big_endian
from ._fixed import _CODES_U16, _need, _u

__all__ = [
    "P9Config", "P9Header", "P9_TLERROR", "P9_RLERROR", "P9_TVERSION", "P9_RVERSION", "P9_TATTACH", "P9_RATTACH",
]


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
