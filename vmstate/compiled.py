"""The engine's fast path: precomputed ``struct`` layouts for the static stretches of a description.

Most fields are fixed-size scalars that are on the wire at every stream of
a given version: integers, bools, fixed buffers, unused bytes and fixed
arrays of integers.  For each (description, version) the consecutive such
fields are compiled into one ``struct.Struct`` and read or written with a
single call; fields not on the wire at that version are left out of the
plan; everything else (``exists`` tests, variable lengths, nested structs,
custom codecs) stays with the interpreter in ``engine``.  An array of a
struct whose whole layout is one such run is read with ``iter_unpack`` and
written with one ``pack`` (``read_static_array``, ``pack_static_array``).

The interpreter stays the reference (``engine.interpreted()`` runs it
alone; tests compare the two): a truncated run is reported at the exact
field it cuts (offset and path as the interpreter would give), and a value
the fast path cannot pack is handed back to it for the precise error.
"""

from __future__ import annotations

import functools
import itertools
import operator
import struct
import weakref
from typing import Any, Sequence

import attrs

from .description import Array, Bool, Buffer, Description, Field, Int, Kind, Record, Struct, Unused
from .errors import PathItem, TruncatedError
from .wire import ByteReader

__all__ = ["StaticRun", "Plan", "plan_for", "static_struct_run", "read_static_array", "pack_static_array"]

Path = tuple[PathItem, ...]

_INT_CODES = {(1, False): "B", (2, False): "H", (4, False): "I", (8, False): "Q",
              (1, True): "b", (2, True): "h", (4, True): "i", (8, True): "q"}
#: slot kinds
_INT, _BOOL, _BYTES, _INTS, _BOOLS = range(5)


@attrs.frozen
class _Slot:
    name: str
    kind: int
    #: values this field takes in the unpacked tuple
    count: int
    #: byte offset and size inside the run
    offset: int
    size: int


def _order(kind: Kind) -> str | None:
    """The struct byte order a static kind needs ('>' or '<'), '' if any, None if not static."""
    if isinstance(kind, Int):
        return "<" if kind.little and kind.width > 1 else ">"
    if isinstance(kind, (Bool, Unused)):
        return ""
    if isinstance(kind, Buffer):
        return "" if kind.size is not None else None
    if isinstance(kind, Array) and kind.count is not None and isinstance(kind.element, (Int, Bool)):
        return _order(kind.element)
    return None


def _slot(name: str, kind: Kind, offset: int) -> tuple[_Slot, str]:
    if isinstance(kind, Int):
        return _Slot(name, _INT, 1, offset, kind.width), _INT_CODES[(kind.width, kind.signed)]
    if isinstance(kind, Bool):
        return _Slot(name, _BOOL, 1, offset, 1), "B"
    if isinstance(kind, (Buffer, Unused)):
        assert kind.size is not None
        return _Slot(name, _BYTES, 1, offset, kind.size), f"{kind.size}s"
    assert isinstance(kind, Array) and kind.count is not None
    element = kind.element
    if isinstance(element, Bool):
        return _Slot(name, _BOOLS, kind.count, offset, kind.count), f"{kind.count}B"
    assert isinstance(element, Int)
    code = _INT_CODES[(element.width, element.signed)]
    return _Slot(name, _INTS, kind.count, offset, kind.count * element.width), f"{kind.count}{code}"


def _load_bool(byte: int) -> int | bool:
    return byte if byte > 1 else bool(byte)


class StaticRun:
    """Consecutive static fields read and written as one struct."""

    __slots__ = ("struct", "slots", "names", "simple", "integers", "size", "_types", "__weakref__")

    def __init__(self, fields: list[Field], order: str) -> None:
        slots: list[_Slot] = []
        codes: list[str] = []
        offset = 0
        for field in fields:
            slot, code = _slot(field.name, field.kind, offset)
            slots.append(slot)
            codes.append(code)
            offset += slot.size
        self.struct = struct.Struct((order or ">") + "".join(codes))
        self.slots = tuple(slots)
        self.names = tuple(s.name for s in slots)
        self.size = self.struct.size
        #: only single ints and buffers: the unpacked tuple maps 1:1 onto the names
        self.simple = all(s.kind in (_INT, _BYTES) for s in slots)
        #: only single integers: an array of it packs from one flat list
        self.integers = all(s.kind == _INT for s in slots)
        self._types: tuple[type, ...] = tuple(int if s.kind in (_INT, _BOOL) else bytes for s in slots)

    # ------------------------------------------------------------ decoding

    def read(self, reader: ByteReader, path: Path) -> dict[str, Any]:
        """Read the run's fields; a short input raises the interpreter's ``TruncatedError``."""
        data = reader.peek(self.size)
        if len(data) < self.size:
            raise self.truncated(len(data), reader.offset, path)
        reader.skip(self.size)
        return self.values(data)

    def values(self, data: bytes | memoryview) -> dict[str, Any]:
        """The fields of one run from its bytes."""
        return self.assemble(self.struct.unpack(data))

    def assemble(self, values: tuple[Any, ...]) -> dict[str, Any]:
        if self.simple:
            return dict(zip(self.names, values))
        out: dict[str, Any] = {}
        i = 0
        for slot in self.slots:
            if slot.kind == _INT or slot.kind == _BYTES:
                out[slot.name] = values[i]
            elif slot.kind == _BOOL:
                out[slot.name] = _load_bool(values[i])
            elif slot.kind == _INTS:
                out[slot.name] = list(values[i : i + slot.count])
            else:
                out[slot.name] = [_load_bool(v) for v in values[i : i + slot.count]]
            i += slot.count
        return out

    def truncated(self, available: int, offset: int, path: Path) -> TruncatedError:
        """The error the interpreter gives when only ``available`` bytes of the run are left."""
        for slot in self.slots:
            if slot.offset + slot.size > available:
                start, size, where = slot.offset, slot.size, (*path, slot.name)
                if slot.kind in (_INTS, _BOOLS):  # the interpreter reads element by element
                    size = slot.size // slot.count
                    index = (available - slot.offset) // size
                    start, where = slot.offset + index * size, (*where, index)
                return TruncatedError(f"expected {size} bytes, got {available - start}", offset=offset + start, path=where)
        raise AssertionError("the run was not truncated")  # pragma: no cover

    # ------------------------------------------------------------ encoding

    def pack(self, fields: dict[str, Any]) -> bytes | None:
        """The run's bytes, or None when a value needs the interpreter (to pack it or to reject it)."""
        try:
            if self.simple:
                values: list[Any] = [fields[name] for name in self.names]
                for value, slot, kind in zip(values, self.slots, self._types):
                    if type(value) is not kind:
                        return None
                    if isinstance(value, bytes) and len(value) != slot.size:
                        return None
                return self.struct.pack(*values)
            flat: list[Any] = []
            for slot in self.slots:
                value = fields[slot.name]
                if slot.kind == _INT:
                    if type(value) is not int:
                        return None
                    flat.append(value)
                elif slot.kind == _BOOL:
                    if type(value) not in (bool, int):
                        return None
                    flat.append(value)
                elif slot.kind == _BYTES:
                    if type(value) is not bytes or len(value) != slot.size:
                        return None
                    flat.append(value)
                else:
                    if type(value) is not list or len(value) != slot.count:
                        return None
                    if slot.kind == _INTS and any(type(v) is not int for v in value):
                        return None
                    if slot.kind == _BOOLS and any(type(v) not in (bool, int) for v in value):
                        return None
                    flat.extend(value)
            return self.struct.pack(*flat)
        except (KeyError, struct.error):
            return None


@attrs.frozen
class Plan:
    """How to walk one description at one version: static runs and interpreted fields."""

    steps: tuple[StaticRun | Field, ...]
    #: the whole description is one static run with no subsections (arrays of it use iter_unpack)
    whole: StaticRun | None


def _compile(description: Description, version: int) -> Plan:
    steps: list[StaticRun | Field] = []
    pending: list[Field] = []
    order = ""

    def flush() -> None:
        nonlocal order
        if pending:
            steps.append(StaticRun(list(pending), order))
            pending.clear()
        order = ""

    for field in description.fields:
        if field.exists is None and field.since_version > version:
            continue  # never on the wire at this version
        needs = _order(field.kind) if field.exists is None else None
        if needs is None:
            flush()
            steps.append(field)
            continue
        if needs and order and needs != order:
            flush()
        order = order or needs
        pending.append(field)
    flush()
    whole = steps[0] if len(steps) == 1 and isinstance(steps[0], StaticRun) and not description.subsections else None
    return Plan(tuple(steps), whole)


_PLANS: dict[tuple[int, int], Plan] = {}


def _forget(key: tuple[int, int]) -> None:
    _PLANS.pop(key, None)


def plan_for(description: Description, version: int) -> Plan:
    """The compiled plan of ``description`` at ``version`` (cached while the description lives)."""
    key = (id(description), version)
    plan = _PLANS.get(key)
    if plan is None:
        plan = _PLANS[key] = _compile(description, version)
        weakref.finalize(description, _forget, key)
    return plan


def static_struct_run(kind: Kind, version: int | None) -> tuple[StaticRun, int] | None:
    """For an array element that is a struct laid out as one static run: the run and its version."""
    if not isinstance(kind, Struct):
        return None
    nested = kind.description
    at = nested.version if kind.version is None else kind.version
    if not nested.minimum_version <= at <= nested.version:
        return None
    whole = plan_for(nested, at).whole
    # a run of no bytes (only empty buffers) is left to the interpreter: iter_unpack needs a size
    return None if whole is None or whole.size == 0 else (whole, at)


@functools.lru_cache(maxsize=256)
def repeated(run: StaticRun, count: int) -> struct.Struct:
    """The struct of ``count`` consecutive runs."""
    return struct.Struct(run.struct.format[0] + run.struct.format[1:] * count)


def records_from(run: StaticRun, data: bytes, version: int) -> list[Record]:
    """Records of consecutive elements laid out as ``run``."""
    if run.simple:
        names = run.names
        return [Record(version, dict(zip(names, values))) for values in run.struct.iter_unpack(data)]
    return [Record(version, run.assemble(values)) for values in run.struct.iter_unpack(data)]


def read_static_array(element: Kind, count: int, reader: ByteReader, version: int) -> list[Record] | None:
    """Read ``count`` elements of a static struct at once; None (nothing read) to leave them to the interpreter.

    None when the element is no static struct, when there are fewer than two,
    or when the input is too short (the interpreter names the element and
    field it stops in).
    """
    static = static_struct_run(element, version) if count > 1 else None
    if static is None:
        return None
    run, at = static
    data = reader.peek(count * run.size)
    if len(data) != count * run.size:
        return None
    reader.skip(len(data))
    return records_from(run, data, at)


_VERSION = operator.attrgetter("version")
_SUBSECTIONS = operator.attrgetter("subsections")
_FIELDS = operator.attrgetter("fields")


def pack_static_array(element: Kind, items: Sequence[Any], version: int, out: list[bytes]) -> bool:
    """Pack an array of static structs in one go; False (nothing written) if any item needs the interpreter."""
    static = static_struct_run(element, version)
    if static is None:
        return False
    run, version = static
    if run.integers and items:
        try:  # map/attrgetter/itemgetter keep the per-item work in C
            if set(map(_VERSION, items)) != {version} or any(map(_SUBSECTIONS, items)):
                return False
            values = map(operator.itemgetter(*run.names), map(_FIELDS, items))
            flat = list(itertools.chain.from_iterable(values)) if len(run.names) > 1 else list(values)
        except (AttributeError, KeyError, TypeError):
            return False
        if set(map(type, flat)) != {int}:  # bools and other int look-alikes: the interpreter decides
            return False
        try:
            out.append(repeated(run, len(items)).pack(*flat))
        except struct.error:
            return False
        return True
    packed: list[bytes] = []
    for item in items:
        if item.__class__ is not Record or item.version != version or item.subsections:
            return False
        data = run.pack(item.fields)
        if data is None:
            return False
        packed.append(data)
    out.append(b"".join(packed))
    return True
