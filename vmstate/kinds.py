"""Ready-made field kinds named as QEMU's VMState infos and macros."""

from __future__ import annotations

import enum

import attrs

from .description import Array, Bool, Buffer, Int, Kind, Prefixed, Unused

__all__ = [
    "UINT8", "UINT16", "UINT32", "UINT64",
    "INT8", "INT16", "INT32", "INT64",
    "BOOL", "TIMER", "INT32_EQUAL", "UINT32_EQUAL", "UINT8_EQUAL", "UINT16_EQUAL",
    "INT64_EQUAL", "INT32_LE",
    "named", "buffer", "vbuffer", "prefixed", "unused", "array", "varray",
]

UINT8 = Int(width=1)
UINT16 = Int(width=2)
UINT32 = Int(width=4)
UINT64 = Int(width=8)
INT8 = Int(width=1, signed=True)
INT16 = Int(width=2, signed=True)
INT32 = Int(width=4, signed=True)
INT64 = Int(width=8, signed=True)
BOOL = Bool()
#: QEMU timers travel as their be64 expiry in ns; -1 means disarmed
TIMER = Int(width=8, signed=True, type_name="timer")
# "equal" infos must match the destination's value on load; "int32 le" means
# less-or-equal (not little-endian): the wire is big-endian for all of them.
INT32_EQUAL = Int(width=4, signed=True, type_name="int32 equal")
UINT32_EQUAL = Int(width=4, type_name="uint32 equal")
UINT16_EQUAL = Int(width=2, type_name="uint16 equal")
UINT8_EQUAL = Int(width=1, type_name="uint8 equal")
INT64_EQUAL = Int(width=8, type_name="int64 equal")
INT32_LE = Int(width=4, signed=True, type_name="int32 le")


def named(kind: Int, values: type[enum.IntEnum]) -> Int:
    """``kind`` whose values are shown by the names of ``values`` (a C enum mirrored as an IntEnum)."""
    return attrs.evolve(kind, names=tuple((int(v), v.name.lower()) for v in values))


def buffer(size: int, *, type_name: str = "buffer", text: bool = False) -> Buffer:
    """A fixed-size byte buffer (``VMSTATE_BUFFER``); ``text``: it holds a name."""
    return Buffer(size=size, type_name=type_name, text=text)


def vbuffer(length_from: str, *, multiply: int = 1, type_name: str = "buffer", text: bool = False) -> Buffer:
    """A buffer whose size is another field's value times ``multiply`` (``VMSTATE_VBUFFER``)."""
    return Buffer(length_from=length_from, multiply=multiply, type_name=type_name, text=text)


def prefixed(width: int = 1, *, type_name: str = "prefixed_buffer") -> Prefixed:
    """Bytes preceded by their own length of ``width`` bytes."""
    return Prefixed(prefix_width=width, type_name=type_name)


def unused(size: int) -> Unused:
    """``size`` bytes of padding (``VMSTATE_UNUSED``)."""
    return Unused(size=size)


def array(element: Kind, count: int) -> Array:
    """``count`` elements of ``element`` (``VMSTATE_ARRAY``)."""
    return Array(element=element, count=count)


def varray(element: Kind, count_from: str, *, multiply: int = 1, adjust: int = 0) -> Array:
    """Elements counted by another field (``VMSTATE_VARRAY_*``), times ``multiply`` plus ``adjust``."""
    return Array(element=element, count_from=count_from, multiply=multiply, adjust=adjust)
