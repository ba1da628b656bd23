"""Declare a state type once, as an attrs class whose fields carry their wire kind.

::

    @state(name="timer", version=2, minimum_version=1)
    class Timer:
        cpu_ticks_offset: int = field(INT64)
        dummy: int = field(INT64)
        cpu_clock_offset: int = field(INT64, since_version=2)

Subsection fields live on the same class (as they live in the same C struct in
QEMU) and name their subsection: ``field(UINT8, subsection="virtio/device_endian")``.
When a subsection is absent from a stream its fields keep their defaults.

Hooks run here, not in the engine (which moves ``Record`` trees, not state
objects): ``to_record`` runs ``pre_save`` before reading the object's
values; ``from_record`` runs ``pre_load`` on a default object, applies the
record's values, then runs ``post_load``; nested struct states get theirs
as they are converted.  ``load`` and ``save`` are these around the engine.
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

import attrs

from .description import (
    Array,
    Bool,
    Buffer,
    Description,
    Field,
    Int,
    Items,
    Kind,
    NeededTest,
    Prefixed,
    Record,
    Struct,
    Unused,
)
from .engine import check_version, decode, encode
from .errors import DescriptionError
from .limits import DEFAULT_LIMITS, Limits
from .wire import ByteReader

__all__ = [
    "state",
    "field",
    "Subsection",
    "description_of",
    "to_record",
    "from_record",
    "load",
    "save",
    "struct",
    "as_received",
    "received_subsections",
]

T = TypeVar("T")
_META = "vmstate"


@attrs.frozen(kw_only=True)
class _FieldDecl:
    kind: Kind
    since_version: int
    exists: Callable[[Any, int], bool] | None
    subsection: str | None
    name: str | None = None


@attrs.frozen
class Subsection:
    """Declare a subsection of a state class; its fields name it."""

    name: str
    version: int
    needed: NeededTest
    minimum_version: int = 0
    #: name of the enclosing subsection when nested; None = the state itself
    parent: str | None = None


#: the attribute a state class declares (``received_subsections()``) to remember which subsections it was loaded with
RECEIVED = "received_subsections"


def received_subsections() -> Any:
    """Declare the (non-wire) attribute that records the subsections a state was loaded with."""
    return attrs.field(factory=frozenset, eq=False)


def as_received(name: str) -> NeededTest:
    """``needed`` for a subsection QEMU sends on something the stream does not carry (a device property).

    The state writes it again exactly when it was loaded with it (its class
    declares ``received_subsections``); a state built from scratch writes none.
    """

    def needed(obj: Any) -> bool:
        return name in getattr(obj, RECEIVED, ())

    needed.__qualname__ = f"as_received({name!r})"
    return needed


def _default_for(kind: Kind) -> Any:
    if isinstance(kind, Int):
        return 0
    if isinstance(kind, Bool):
        return False
    if isinstance(kind, (Buffer, Unused)):
        size = kind.size if kind.size is not None else 0
        return attrs.Factory(lambda: bytes(size))
    if isinstance(kind, Prefixed):
        return b""
    if isinstance(kind, Array):
        element = kind.element
        count = kind.count or 0
        return attrs.Factory(lambda: [_make_default(element) for _ in range(count)])
    if isinstance(kind, Items):
        elements = kind.elements
        return attrs.Factory(lambda: [_make_default(e) for e in elements])
    if isinstance(kind, Struct):
        return attrs.Factory(lambda: _make_default(kind))
    raise DescriptionError(f"no default for kind {kind!r}")


def _make_default(kind: Kind) -> Any:
    if isinstance(kind, Struct):
        cls = kind.description.cls
        if cls is None:
            raise DescriptionError(f"struct {kind.description.name!r} has no state class")
        return cls()
    default = _default_for(kind)
    return default.factory() if isinstance(default, attrs.Factory) else default  # type: ignore[misc,arg-type]


def field(
    kind: Kind,
    *,
    since_version: int = 0,
    exists: Callable[[Any, int], bool] | None = None,
    subsection: str | None = None,
    default: Any = attrs.NOTHING,
    name: str | None = None,
) -> Any:
    """Declare an attrs field with its wire kind and gating.

    ``name`` is the field's name in the description when it differs from the
    attribute's: QEMU's own, such as ``env.regs`` or ``ar.pm1.evt.sts``.
    """
    decl = _FieldDecl(kind=kind, since_version=since_version, exists=exists, subsection=subsection, name=name)
    value = _default_for(kind) if default is attrs.NOTHING else default
    return attrs.field(default=value, metadata={_META: decl})


def struct(cls: type) -> Struct:
    """The kind of a field holding a nested state class (``VMSTATE_STRUCT``)."""
    return Struct(description=description_of(cls))


def state(
    *,
    name: str,
    version: int,
    minimum_version: int = 0,
    subsections: tuple[Subsection, ...] = (),
    pre_save: Callable[[Any], None] | None = None,
    pre_load: Callable[[Any, int], None] | None = None,
    post_load: Callable[[Any, int], None] | None = None,
) -> Callable[[type[T]], type[T]]:
    """Make a class an attrs state type and attach its ``Description``."""

    def wrap(cls: type[T]) -> type[T]:
        cls = attrs.define(cls, kw_only=True)
        groups: dict[str | None, list[Field]] = {None: []}
        for sub in subsections:
            groups[sub.name] = []
        for attribute in attrs.fields(cls):  # type: ignore[arg-type]
            decl = attribute.metadata.get(_META)
            if decl is None:
                continue
            if decl.subsection not in groups:
                raise DescriptionError(f"{name}: field {attribute.name} names unknown subsection {decl.subsection!r}")
            groups[decl.subsection].append(
                Field(
                    name=decl.name or attribute.name,
                    kind=decl.kind,
                    since_version=decl.since_version,
                    exists=decl.exists,
                    attribute=attribute.name if decl.name else None,
                )
            )

        def build(sub_name: str | None) -> tuple[Description, ...]:
            built = []
            for sub in subsections:
                if sub.parent == sub_name:
                    built.append(
                        Description(
                            name=sub.name,
                            version=sub.version,
                            minimum_version=sub.minimum_version,
                            fields=tuple(groups[sub.name]),
                            subsections=build(sub.name),
                            needed=sub.needed,
                            cls=cls,
                        )
                    )
            return tuple(built)

        description = Description(
            name=name,
            version=version,
            minimum_version=minimum_version,
            fields=tuple(groups[None]),
            subsections=build(None),
            cls=cls,
            pre_save=pre_save,
            pre_load=pre_load,
            post_load=post_load,
        )
        cls.__vmstate__ = description  # type: ignore[attr-defined]
        return cls

    return wrap


def description_of(obj_or_cls: Any) -> Description:
    """Return the description a state class (or instance) was declared with."""
    cls = obj_or_cls if isinstance(obj_or_cls, type) else type(obj_or_cls)
    description = getattr(cls, "__vmstate__", None)
    if not isinstance(description, Description):
        raise DescriptionError(f"{cls.__name__} is not a vmstate state class")
    return description


# ------------------------------------------------------- object <-> record


def _value_to_wire(kind: Kind, value: Any) -> Any:
    if isinstance(kind, Struct) and kind.description.cls is not None and not isinstance(value, Record):
        return to_record(value, version=kind.version)
    if isinstance(kind, Array):
        return [_value_to_wire(kind.element, item) for item in value]
    if isinstance(kind, Items):
        return [_value_to_wire(k, item) for k, item in zip(kind.elements, value)]
    return value


def _value_from_wire(kind: Kind, value: Any) -> Any:
    if isinstance(kind, Struct) and kind.description.cls is not None:
        return from_record(kind.description.cls, value)
    if isinstance(kind, Array):
        return [_value_from_wire(kind.element, item) for item in value]
    if isinstance(kind, Items):
        return [_value_from_wire(k, item) for k, item in zip(kind.elements, value)]
    return value


def _record_of(obj: Any, description: Description, version: int) -> Record:
    record = Record(version=version)
    for f in description.fields:
        record.fields[f.name] = _value_to_wire(f.kind, getattr(obj, f.attribute or f.name))
    for sub in description.subsections:
        assert sub.needed is not None
        if sub.needed(obj):
            record.subsections[sub.name] = _record_of(obj, sub, sub.version)
    return record


def to_record(obj: Any, *, version: int | None = None) -> Record:
    """Run ``pre_save`` and turn a state object into a ``Record``.

    ``version`` selects an older wire version to write (fields newer than it
    are left out); it must lie in the description's loadable range.
    """
    description = description_of(obj)
    if version is None:
        version = description.version
    check_version(description, version)
    if description.pre_save is not None:
        description.pre_save(obj)
    return _record_of(obj, description, version)


def _apply(obj: Any, description: Description, record: Record) -> None:
    for f in description.fields:
        if f.name in record.fields:
            setattr(obj, f.attribute or f.name, _value_from_wire(f.kind, record.fields[f.name]))
    for name, sub_record in record.subsections.items():
        sub = description.subsection(name)
        if sub is None:
            raise DescriptionError(f"{description.name!r} has no subsection {name!r}")
        _apply(obj, sub, sub_record)
        if hasattr(obj, RECEIVED):
            setattr(obj, RECEIVED, getattr(obj, RECEIVED) | {name})


def from_record(cls: type[T], record: Record) -> T:
    """Build a state object from a ``Record``: defaults, pre_load, values, post_load."""
    description = description_of(cls)
    obj = cls()
    if description.pre_load is not None:
        description.pre_load(obj, record.version)
    _apply(obj, description, record)
    if description.post_load is not None:
        description.post_load(obj, record.version)
    return obj


def load(cls: type[T], reader: ByteReader, version: int, *, limits: Limits = DEFAULT_LIMITS) -> T:
    """Decode one ``cls`` state at ``version`` from ``reader``."""
    return from_record(cls, decode(description_of(cls), reader, version, limits=limits))


def save(obj: Any, *, version: int | None = None, limits: Limits = DEFAULT_LIMITS) -> bytes:
    """Encode a state object (its fields, then its needed subsections)."""
    record = to_record(obj, version=version)
    return encode(description_of(obj), record, limits=limits)

