"""What every device header shares: field checks, (LE, BE) struct pairs, the fixed-size base class."""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

import attrs

from vmstate.errors import EncodeError, TruncatedError

from ..access import Buffer, EndianSubject, is_big_endian

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
