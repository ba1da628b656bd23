"""One internal model for the static check, whatever the schema came from.

Both our schema export and QEMU's ``-dump-vmstate`` JSON are normalized into
these frozen trees: a ``SchemaSet`` of top-level sections, each a
``VmsdNode`` (a vmsd: versions, fields, subsections) whose ``FieldNode``s
say how many bytes they put on the wire and when.  The rules in
``vmstate.compat.rules`` only ever see this model.
"""

from __future__ import annotations

from typing import Literal

import attrs

__all__ = ["FieldNode", "Presence", "SchemaSet", "SizeSemantics", "VmsdNode", "present"]

#: ``wire``: a field's size is the bytes it puts on the wire (our export);
#: ``qemu``: QEMU's dump prints one element's size for arrays and the C
#: struct size for nested structs, so sizes compare only element-wise
SizeSemantics = Literal["wire", "qemu"]

#: whether a field is on the wire at a version: yes, no, or it depends on state
Presence = Literal["yes", "no", "depends"]


@attrs.frozen(kw_only=True)
class FieldNode:
    """One field of a vmsd, as far as compatibility is concerned."""

    name: str
    #: QEMU's info name (``uint32``, ``struct``, ``virtio``...); empty when unknown (QEMU's dump)
    type: str = ""
    #: bytes on the wire when fixed; None when the stream decides (a counted buffer)
    size: int | None = None
    #: one element's size for arrays (what QEMU's dump calls ``size``)
    element_size: int | None = None
    #: the rule that sizes a variable field, e.g. ``count_from=num_queues``
    size_rule: str = ""
    #: present only in versions >= this (QEMU's ``_V``)
    since_version: int = 0
    #: name of the ``exists`` test, if any (QEMU's ``_TEST``; ``field_exists`` in a dump)
    gate: str | None = None
    #: the versions at which ``gate`` holds, when it depends on the version alone
    gate_versions: frozenset[int] | None = None
    #: padding (``VMSTATE_UNUSED``): its bytes carry nothing
    unused: bool = False
    #: the nested vmsd of a struct field (or of an array's struct elements)
    struct: VmsdNode | None = None
    #: a struct pinned to one version (``VMSTATE_VSTRUCT``)
    struct_version: int | None = None
    #: a custom field's layout parts that are vmsds, by their place in the layout
    parts: tuple[tuple[str, VmsdNode], ...] = ()
    #: a custom field's other layout facts, as stable JSON text by key
    layout: tuple[tuple[str, str], ...] = ()
    #: the field is opaque: only its name is known (a QEMU custom info of size 0)
    opaque: bool = False


@attrs.frozen(kw_only=True)
class VmsdNode:
    """A vmsd: a versioned list of fields plus subsections."""

    name: str
    version: int
    minimum_version: int
    fields: tuple[FieldNode, ...] = ()
    subsections: tuple[VmsdNode, ...] = ()
    #: subsections: name of the ``needed`` test; None = always sent (or a top-level vmsd)
    needed: str | None = None
    #: whether the source says anything about ``needed`` (QEMU's dump does not)
    needed_known: bool = True

    def subsection(self, name: str) -> VmsdNode | None:
        """The subsection called ``name``, if any."""
        return next((s for s in self.subsections if s.name == name), None)


@attrs.frozen(kw_only=True)
class SchemaSet:
    """Every section of one schema source, keyed for matching against another."""

    #: ``vmstate-forge`` (our export) or ``qemu-dump-vmstate``
    format: str
    #: a name for reports: the file, plus the machine type for QEMU dumps
    label: str
    sizes: SizeSemantics
    #: top-level vmsds by key: our described name (``virtio-net@pci``) or QEMU's type name
    sections: dict[str, VmsdNode] = attrs.field(factory=dict)
    machine: str | None = None


def present(field: FieldNode, version: int) -> Presence:
    """Whether ``field`` is on the wire of its vmsd at ``version``.

    An ``exists`` test is the sole answer when there is one, as in QEMU's
    ``vmstate_field_exists`` (migration/vmstate.c).
    """
    if field.gate is None:
        return "yes" if field.since_version <= version else "no"
    if field.gate_versions is None:
        return "depends"
    return "yes" if version in field.gate_versions else "no"
