"""Section descriptions built from a QEMU ``-dump-vmstate`` file, for streams that carry none.

A stream without a vmdesc trailer (machine types before 2.3) names no field;
QEMU's ``-dump-vmstate`` output of the same QEMU build does, per vmsd.  The
dump is read by ``vmstate.compat.sources`` (the parser ``compat diff`` uses)
and each vmsd becomes a ``Description`` on demand.  The dump cannot show
everything, and what it cannot show is never guessed:

* a field with a ``field_exists`` test (QEMU's ``_TEST``: the dump says there
  is a test, not what it decides) and a field of size 0 without a nested
  vmsd (a custom ``VMStateInfo`` such as ``virtio`` or ``scsi-requests``,
  which sizes itself) become a *refusal*: decoding that reaches one raises
  ``UnsupportedError`` naming the field, the description gives way and the
  section is kept raw with that reason;
* an array looks like its one element (the dump prints ``size`` per element
  and no count) and a nested struct's ``size`` is its C size: both are read
  as one element, so a description that under-reads does not end where the
  section ends and the reader's boundary check refuses it;
* subsections are read when the stream has them, as the stream says.

Integers are big-endian of the dump's size (every VMState integer is);
other sizes are byte buffers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..description import Buffer, Custom, CustomContext, Description, Field, Int, Kind, Struct
from ..errors import EncodeError, UnsupportedError
from ..lookup import DUMP_SOURCE, TYPED_SOURCE, DescriptionLookup, LookupFunction, as_lookup
from ..wire import ByteReader
from .model import FieldNode, SchemaSet, VmsdNode
from .sources import load_schema

__all__ = ["DumpDescriptions", "DUMP_SOURCE"]

#: ``DeviceState.source`` of a section decoded through a dump description

_INT_WIDTHS = (1, 2, 4, 8)


class _Refusal:
    """A custom codec standing where the dump cannot say what is on the wire."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def decode(self, reader: ByteReader, context: CustomContext) -> Any:
        raise UnsupportedError(self.reason, offset=reader.offset, path=context.path)

    def encode(self, value: Any, context: CustomContext) -> bytes:
        raise EncodeError(self.reason, path=context.path)

    def describe(self) -> dict[str, Any]:
        return {"refused": self.reason}


def _always(_state: Any) -> bool:
    return True


def _kind(node: FieldNode, vmsd: str, depth: int) -> Kind:
    where = f"{vmsd}.{node.name.split('#')[0]}"
    if node.gate is not None:
        reason = f"QEMU's dump shows a field_exists test on {where} but not what it decides"
        return Custom(codec=_Refusal(reason), type_name="refused")
    if node.struct is not None:
        nested = _description(node.struct, depth + 1, nested=True)
        return Struct(description=nested, version=nested.version)
    if node.opaque or not node.size:
        reason = f"{where} is a custom VMStateInfo of a size QEMU's dump does not show"
        return Custom(codec=_Refusal(reason), type_name="refused")
    if node.size in _INT_WIDTHS:
        return Int(width=node.size)
    return Buffer(size=node.size)


def _description(node: VmsdNode, depth: int, *, nested: bool = False, subsection: bool = False) -> Description:
    fields = tuple(
        Field(name=f.name, kind=_kind(f, node.name, depth), since_version=f.since_version) for f in node.fields
    )
    subsections = tuple(_description(s, depth + 1, subsection=True) for s in node.subsections)
    return Description(
        name=node.name if nested or subsection else f"{node.name}@dump",
        version=node.version,
        minimum_version=node.minimum_version,
        fields=fields,
        subsections=subsections,
        needed=_always if subsection else None,
    )


class DumpDescriptions:
    """A description lookup (``StreamReader(descriptions=...)``) over one ``-dump-vmstate`` file.

    ``fallback`` (e.g. ``devices.DEFAULT_REGISTRY``) is asked first; the dump
    only fills the sections it has no description for.  Descriptions are
    named ``<vmsd>@dump`` and decoded sections report the source ``dump``.
    """

    def __init__(self, schema: SchemaSet, fallback: DescriptionLookup | LookupFunction | None = None) -> None:
        if schema.format != "qemu-dump-vmstate":
            raise UnsupportedError(f"{schema.label}: not QEMU -dump-vmstate output")
        self.label = schema.label
        self._fallback = as_lookup(fallback)
        self._nodes: dict[str, VmsdNode] = {}
        for node in schema.sections.values():
            # several device types share a vmsd (isa-i8259, kvm-i8259): the first one stands for all
            self._nodes.setdefault(node.name, node)
        self._built: dict[str, Description] = {}
        self._ours: set[int] = set()

    @classmethod
    def load(cls, path: str | Path, fallback: DescriptionLookup | LookupFunction | None = None) -> DumpDescriptions:
        """Read a dump file (a ``SchemaFormatError`` if it is not one)."""
        return cls(load_schema(path), fallback)

    def _from_dump(self, idstr: str, version: int) -> Description | None:
        name = idstr.rsplit("/", 1)[-1]
        node = self._nodes.get(name)
        if node is None or not node.minimum_version <= version <= node.version:
            return None
        if name not in self._built:
            self._built[name] = _description(node, 0)
            self._ours.add(id(self._built[name]))
        return self._built[name]

    def candidates(self, idstr: str, instance_id: int, version: int) -> list[Description]:
        """Our descriptions for the section first, then the dump's."""
        found: list[Description] = []
        if self._fallback is not None:
            found.extend(self._fallback.candidates(idstr, instance_id, version))
        from_dump = self._from_dump(idstr, version)
        if from_dump is not None:
            found.append(from_dump)
        return found

    def __call__(self, idstr: str, instance_id: int, version: int) -> Description | None:
        """The first candidate, or None."""
        found = self.candidates(idstr, instance_id, version)
        return found[0] if found else None

    def source_of(self, description: Description) -> str:
        """``dump`` for a description built here, else what the fallback says (``typed``)."""
        if id(description) in self._ours:
            return DUMP_SOURCE
        return self._fallback.source_of(description) if self._fallback is not None else TYPED_SOURCE
