"""The one interpreter of descriptions, in QEMU's order.

Decoding follows ``vmstate_load_state`` (migration/vmstate.c): version
window, fields (each gated by its ``exists`` test or else by
``since_version``), then subsections matched by name.  Encoding walks the
same description over a ``Record``, so the two directions cannot drift
apart.  Paths are threaded through so that every ``DecodeError`` names the
field it happened in.

The interpreter gates every field itself.  ``vmstate.compiled`` is its fast
path (static runs of fields read and written as one ``struct``, arrays of
static structs at once), used by default; inside ``with interpreted():``
the interpreter runs alone, the reference that tests compare the plan with.

Hooks do not run here: the engine moves ``Record`` trees, and a
description's ``pre_save``/``pre_load``/``post_load`` work on state objects,
so ``vmstate.typed`` runs them (``to_record``, ``from_record``) around it.

A custom codec (``Custom``) raises ``EncodeError`` for a value it cannot
write; the engine holds every codec to that, turning any other exception a
codec's ``encode`` lets out for a malformed value into an ``EncodeError``
at the field's path.
"""

from __future__ import annotations

import contextlib
import struct
from contextvars import ContextVar
from typing import Any, Iterator, Sequence

from .compiled import StaticRun, pack_static_array, plan_for, read_static_array
from .description import (
    Array,
    Bool,
    Buffer,
    Custom,
    CustomContext,
    Description,
    Field,
    Int,
    Items,
    Kind,
    Prefixed,
    Record,
    Struct,
    Unused,
)
from .errors import (
    DecodeError,
    DescriptionError,
    EncodeError,
    LimitExceededError,
    MalformedError,
    PathItem,
    UnknownSubsectionError,
    VersionError,
)
from .limits import DEFAULT_LIMITS, Limits
from .wire import INT_STRUCTS, LE_INT_STRUCTS, ByteReader

__all__ = ["decode", "encode", "check_version", "interpreted", "SUBSECTION_MARKER", "StateView"]

#: QEMU_VM_SUBSECTION
SUBSECTION_MARKER = 0x05

Path = tuple[PathItem, ...]
Scopes = tuple[dict[str, Any], ...]

#: True inside ``interpreted()``: no compiled plan, no array fast path
_REFERENCE: ContextVar[bool] = ContextVar("vmstate_engine_reference", default=False)

#: what a custom codec's ``encode`` may let out on a value of the wrong shape (besides our own errors)
_CODEC_SHAPE_ERRORS = (DescriptionError, KeyError, IndexError, TypeError, ValueError, AttributeError,
                       OverflowError, struct.error)


@contextlib.contextmanager
def interpreted() -> Iterator[None]:
    """Decode and encode on the interpreter alone inside the block (the reference path).

    The compiled plan must give the same records, bytes and errors (offset,
    path, message); tests compare the two with this switch.  It holds for
    the current thread or task, nested decodes of custom codecs included.
    """
    token = _REFERENCE.set(True)
    try:
        yield
    finally:
        _REFERENCE.reset(token)


class StateView:
    """Attribute access to the values decoded so far, innermost scope first.

    ``exists`` tests receive this, so one test works for loading (partial
    values) and saving (all values).
    """

    __slots__ = ("_scopes",)

    def __init__(self, scopes: Scopes) -> None:
        self._scopes = scopes

    def __getattr__(self, name: str) -> Any:
        for scope in reversed(self._scopes):
            if name in scope:
                return scope[name]
        raise AttributeError(name)


def check_version(description: Description, version: int) -> None:
    """Raise ``VersionError`` unless ``version`` is loadable by ``description``."""
    if not description.minimum_version <= version <= description.version:
        raise VersionError(
            f"{description.name}: version {version} is outside the loadable range "
            f"{description.minimum_version}..{description.version}",
            version=version,
        )


def _steps(description: Description, version: int) -> Sequence[StaticRun | Field]:
    """The compiled plan's steps, or every field (the interpreter gates them) on the reference path."""
    return description.fields if _REFERENCE.get() else plan_for(description, version).steps


def _lookup(scopes: Scopes, name: str, path: Path) -> int:
    for scope in reversed(scopes):
        if name in scope:
            value = scope[name]
            if isinstance(value, bool) or not isinstance(value, int):
                raise MalformedError(f"length field {name!r} holds {value!r}", path=path)
            return value
    raise MalformedError(f"length field {name!r} is not on the wire", path=path)


def _sized(count: int, limit: int, limit_name: str, what: str, path: Path) -> int:
    if count < 0:
        raise MalformedError(f"{what} {count} is negative", path=path)
    if count > limit:
        raise LimitExceededError(f"{what} {count} exceeds limits.{limit_name} = {limit}", path=path)
    return count


# ---------------------------------------------------------------- decoding


def decode(
    description: Description,
    reader: ByteReader,
    version: int,
    *,
    limits: Limits = DEFAULT_LIMITS,
    path: Path = (),
    scopes: Scopes = (),
    _depth: int = 0,
) -> Record:
    """Read one description's fields and subsections at ``version``.

    ``scopes`` are enclosing values that ``exists`` tests and ``length_from``
    may refer to (a custom codec passes what it decoded before).
    """
    if _depth > limits.max_depth:
        raise LimitExceededError(
            f"nesting deeper than limits.max_depth = {limits.max_depth}",
            offset=reader.offset,
            path=path,
        )
    try:
        check_version(description, version)
    except DecodeError as error:
        error.add_context(offset=reader.offset, path=path)
        raise
    record = Record(version=version)
    fields = record.fields
    scopes = (*scopes, fields)
    view = StateView(scopes)  # reads the scopes live: one view serves every exists test
    for step in _steps(description, version):
        if step.__class__ is StaticRun:
            fields.update(step.read(reader, path))  # type: ignore[union-attr]
            continue
        assert isinstance(step, Field)
        # On the wire: its exists test, else its since_version (QEMU's vmstate_field_exists);
        # the plan leaves out what since_version excludes, the reference path needs the check.
        if step.exists is not None:
            if not step.exists(view, version):
                continue
        elif step.since_version > version:
            continue
        field_path = (*path, step.name)
        try:
            fields[step.name] = _decode_kind(step.kind, reader, limits, field_path, scopes, _depth, version)
        except DecodeError as error:
            error.add_context(offset=reader.offset, path=field_path)
            raise
    _decode_subsections(description, reader, record, limits, path, scopes, _depth)
    return record


def _decode_subsections(
    description: Description,
    reader: ByteReader,
    record: Record,
    limits: Limits,
    path: Path,
    scopes: Scopes,
    depth: int,
) -> None:
    prefix = description.vmsd_name.encode()
    while True:
        head = reader.peek(2)
        if len(head) < 2 or head[0] != SUBSECTION_MARKER or head[1] < len(prefix) + 1:
            return
        name_bytes = reader.peek(2 + head[1])[2:]
        if len(name_bytes) < head[1] or not name_bytes.startswith(prefix):
            # Not ours: QEMU leaves these bytes to the caller (vmstate.c).
            return
        name = name_bytes.decode("latin-1")
        sub = description.subsection(name)
        if sub is None:
            raise UnknownSubsectionError(
                f"unknown subsection {name!r} of {description.name!r}",
                offset=reader.offset,
                path=path,
            )
        if name in record.subsections:
            raise MalformedError(f"subsection {name!r} sent twice", offset=reader.offset, path=path)
        reader.skip(2 + head[1])
        version = reader.u32()
        record.subsections[name] = decode(
            sub,
            reader,
            version,
            limits=limits,
            path=(*path, name),
            scopes=scopes,
            _depth=depth + 1,
        )


def _decode_kind(
    kind: Kind, reader: ByteReader, limits: Limits, path: Path, scopes: Scopes, depth: int, version: int
) -> Any:
    if isinstance(kind, Int):
        structs = LE_INT_STRUCTS if kind.little else INT_STRUCTS
        return structs[(kind.width, kind.signed)].unpack(reader.read(kind.width))[0]
    if isinstance(kind, Bool):
        byte = reader.read(1)[0]
        return byte if byte > 1 else bool(byte)
    if isinstance(kind, Buffer):
        if kind.size is not None:
            size = kind.size
        else:
            assert kind.length_from is not None
            size = _lookup(scopes, kind.length_from, path) * kind.multiply
        return reader.read(_sized(size, limits.max_buffer, "max_buffer", "buffer length", path))
    if isinstance(kind, Prefixed):
        size = int.from_bytes(reader.read(kind.prefix_width), "big")
        return reader.read(_sized(size, limits.max_buffer, "max_buffer", "buffer length", path))
    if isinstance(kind, Unused):
        return reader.read(kind.size)
    if isinstance(kind, Array):
        if kind.count is not None:
            count = kind.count
        else:
            assert kind.count_from is not None
            count = _lookup(scopes, kind.count_from, path) * kind.multiply + kind.adjust
        _sized(count, limits.max_array_count, "max_array_count", "array length", path)
        if depth < limits.max_depth and not _REFERENCE.get():
            records = read_static_array(kind.element, count, reader, version)
            if records is not None:
                return records
        return [
            _decode_element(kind.element, reader, limits, (*path, i), scopes, depth, version)
            for i in range(count)
        ]
    if isinstance(kind, Items):
        return [
            _decode_element(element, reader, limits, (*path, i), scopes, depth, version)
            for i, element in enumerate(kind.elements)
        ]
    if isinstance(kind, Struct):
        nested = kind.description
        return decode(
            nested,
            reader,
            nested.version if kind.version is None else kind.version,
            limits=limits,
            path=path,
            _depth=depth + 1,
        )
    if isinstance(kind, Custom):
        return kind.codec.decode(reader, CustomContext(limits=limits, path=path, version=version, scopes=scopes, depth=depth + 1))
    raise DescriptionError(f"unknown field kind {kind!r}")


def _decode_element(
    kind: Kind, reader: ByteReader, limits: Limits, path: Path, scopes: Scopes, depth: int, version: int
) -> Any:
    try:
        return _decode_kind(kind, reader, limits, path, scopes, depth, version)
    except DecodeError as error:
        error.add_context(offset=reader.offset, path=path)
        raise


# ---------------------------------------------------------------- encoding


def encode(
    description: Description,
    record: Record,
    *,
    limits: Limits = DEFAULT_LIMITS,
    path: Path = (),
    scopes: Scopes = (),
    _depth: int = 0,
) -> bytes:
    """Encode ``record`` with ``description``; the inverse of ``decode``.

    ``limits`` and the nesting depth reach custom codecs as they do on decoding.
    """
    out: list[bytes] = []
    _encode_into(description, record, out, limits, path, scopes, _depth)
    return b"".join(out)


def _encode_into(
    description: Description, record: Record, out: list[bytes], limits: Limits, path: Path, parent: Scopes, depth: int
) -> None:
    fields = record.fields
    version = record.version
    if not description.minimum_version <= version <= description.version:
        # what decode would refuse (and one compiled plan per version a caller makes up)
        raise EncodeError(
            f"{description.name}: version {version} is outside the range "
            f"{description.minimum_version}..{description.version}",
            path=path,
        )
    scopes = (*parent, fields)
    view = StateView(scopes)
    for step in _steps(description, version):
        if step.__class__ is StaticRun:
            assert isinstance(step, StaticRun)
            packed = step.pack(fields)
            if packed is not None:
                out.append(packed)
                continue
            # A value the run cannot pack as it is: the interpreter writes it or says why not.
            for field in _fields_of(description, step.names):
                _encode_field(field, fields, out, limits, path, scopes, version, depth)
            continue
        assert isinstance(step, Field)
        if step.exists is not None:
            if not step.exists(view, version):
                continue
        elif step.since_version > version:
            continue
        _encode_field(step, fields, out, limits, path, scopes, version, depth)
    for name, sub_record in record.subsections.items():
        sub = description.subsection(name)
        if sub is None:
            raise EncodeError(f"{description.name!r} has no subsection {name!r}", path=path)
        try:
            raw_name = name.encode("latin-1")  # the wire's subsection names are bytes, read as latin-1
        except UnicodeEncodeError:
            raise EncodeError(f"subsection name {name!r} is not latin-1: no stream can carry it", path=path) from None
        out.append(bytes((SUBSECTION_MARKER, len(raw_name))) + raw_name)
        out.append(INT_STRUCTS[(4, False)].pack(sub_record.version))
        _encode_into(sub, sub_record, out, limits, (*path, name), scopes, depth + 1)


def _fields_of(description: Description, names: tuple[str, ...]) -> list[Field]:
    by_name = {f.name: f for f in description.fields}
    return [by_name[name] for name in names]


def _encode_field(
    field: Field, fields: dict[str, Any], out: list[bytes], limits: Limits, path: Path, scopes: Scopes, version: int, depth: int
) -> None:
    field_path = (*path, field.name)
    if field.name not in fields:
        raise EncodeError("field is on the wire at this version but has no value", path=field_path)
    _encode_kind(field.kind, fields[field.name], out, limits, field_path, scopes, version, depth)


def _expect_len(actual: int, expected: int, what: str, path: Path) -> None:
    if actual != expected:
        raise EncodeError(f"{what} has {actual} items, the description says {expected}", path=path)


def _encode_kind(
    kind: Kind, value: Any, out: list[bytes], limits: Limits, path: Path, scopes: Scopes, version: int, depth: int
) -> None:
    if isinstance(kind, Int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise EncodeError(f"expected an integer, got {value!r}", path=path)
        if not kind.minimum <= value <= kind.maximum:
            raise EncodeError(f"{value} does not fit {kind.type_name}", path=path)
        structs = LE_INT_STRUCTS if kind.little else INT_STRUCTS
        out.append(structs[(kind.width, kind.signed)].pack(value))
    elif isinstance(kind, Bool):
        if not isinstance(value, int) or not 0 <= value <= 255:
            raise EncodeError(f"expected a bool, got {value!r}", path=path)
        out.append(bytes((int(value),)))
    elif isinstance(kind, (Buffer, Unused, Prefixed)):
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise EncodeError(f"expected bytes, got {type(value).__name__}", path=path)
        if isinstance(kind, Prefixed):
            if len(value) >= 1 << (8 * kind.prefix_width):
                raise EncodeError(f"{len(value)} bytes do not fit a {kind.prefix_width}-byte length", path=path)
            out.append(len(value).to_bytes(kind.prefix_width, "big"))
        elif isinstance(kind, Unused) or kind.size is not None:
            _expect_len(len(value), kind.size or 0, "buffer", path)
        else:
            assert kind.length_from is not None
            expected = _lookup_for_encode(scopes, kind.length_from, path) * kind.multiply
            _expect_len(len(value), expected, "buffer", path)
        out.append(bytes(value))
    elif isinstance(kind, Array):
        _check_sequence(value, path)
        if kind.count is not None:
            expected = kind.count
        else:
            assert kind.count_from is not None
            expected = _lookup_for_encode(scopes, kind.count_from, path) * kind.multiply + kind.adjust
        _expect_len(len(value), expected, "array", path)
        if not _REFERENCE.get() and pack_static_array(kind.element, value, version, out):
            return
        for i, item in enumerate(value):
            _encode_kind(kind.element, item, out, limits, (*path, i), scopes, version, depth)
    elif isinstance(kind, Items):
        _check_sequence(value, path)
        _expect_len(len(value), len(kind.elements), "sequence", path)
        for i, (element, item) in enumerate(zip(kind.elements, value)):
            _encode_kind(element, item, out, limits, (*path, i), scopes, version, depth)
    elif isinstance(kind, Struct):
        if not isinstance(value, Record):
            raise EncodeError(f"expected a Record, got {type(value).__name__}", path=path)
        _encode_into(kind.description, value, out, limits, path, (), depth + 1)
    elif isinstance(kind, Custom):
        context = CustomContext(limits=limits, path=path, version=version, scopes=scopes, depth=depth + 1)
        try:
            out.append(kind.codec.encode(value, context))
        except (EncodeError, DecodeError):
            raise
        except _CODEC_SHAPE_ERRORS as error:
            # The codec met a shape it does not expect: still our error, at the field it is in.
            raise EncodeError(f"{kind.type_name}: {type(error).__name__}: {error}", path=path) from error
    else:
        raise DescriptionError(f"unknown field kind {kind!r}")


def _check_sequence(value: Any, path: Path) -> Sequence[Any]:
    if not isinstance(value, (list, tuple)):
        raise EncodeError(f"expected a list, got {type(value).__name__}", path=path)
    return value


def _lookup_for_encode(scopes: Scopes, name: str, path: Path) -> int:
    try:
        return _lookup(scopes, name, path)
    except DecodeError as error:
        raise EncodeError(error.message, path=path) from None
