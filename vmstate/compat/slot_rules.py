"""Byte accounting for fields that only one side has: padding slots and ``exists`` tests.

QEMU's loader reads fields by position, so what decides whether a load stays
aligned is how many bytes each side puts where, not the names:

* ``VMSTATE_UNUSED(n)`` skips ``n`` bytes on load and writes ``n`` zeros on
  save, so fields retired into a slot of their size (sb16's five ``int32``s
  -> ``unused`` of 20 bytes), or a slot that gets a field again, keep the
  layout;
* a field with an ``exists`` test (``VMSTATE_*_TEST``) is on the wire only
  when its test holds, and QEMU keys such tests to machine-type properties
  (e1000e's ``core.timadj``, ``migrate-timadj`` off for older machine
  types) or to a version number carried in the state itself (esp's
  ``mig_version_id``).  When the test depends on the state, the schema
  cannot tell which fields go on the wire: if some choice of them makes up
  the bytes the other fields differ by, the layouts may agree, and the
  finding is a warning, not an error.

QEMU's ``-dump-vmstate`` prints one element's size for arrays, never the
count: a real field there may stand for any whole number of its elements.
"""

from __future__ import annotations

from .model import FieldNode, present

__all__ = ["MAX_DEPENDS", "MAX_SUMS", "balance_possible", "fits_slot", "sizes_known"]

#: fields with state-dependent tests looked at per vmsd (QEMU's vmsds have a handful)
MAX_DEPENDS = 64
#: distinct byte differences tracked while trying their choices
MAX_SUMS = 8192


def sizes_known(fields: list[FieldNode]) -> bool:
    """Whether every field's wire size is a known number (no struct, counted buffer or opaque info)."""
    return all(f.size is not None and f.struct is None and not f.opaque for f in fields)


def fits_slot(real: list[FieldNode], slot: int, *, element_sizes: bool) -> str | None:
    """How ``real`` fields can fill ``slot`` padding bytes: ``exact``, ``counts`` or None (they cannot).

    ``element_sizes``: sizes are one element's (QEMU's dump), so each field
    may be any whole number >= 1 of them (``counts`` when that is needed).
    """
    total = sum(f.size or 0 for f in real)
    if total == slot:
        return "exact"
    if not element_sizes or total > slot or slot > MAX_SUMS:
        return None
    reachable = {total}  # each field once; add more elements of any of them
    steps = sorted({f.size for f in real if f.size})
    for value in range(total, slot + 1):
        if value in reachable:
            reachable.update(value + step for step in steps if value + step <= slot)
    return "counts" if slot in reachable else None


def balance_possible(difference: int, writer: list[FieldNode], reader: list[FieldNode],
                     writer_version: int, reader_version: int) -> bool:
    """Whether the state-dependent fields can make up ``difference`` bytes.

    ``difference``: bytes the writer's fixed fields put on the wire beyond
    what the reader's fixed fields take.  A writer's tested field left out
    or a reader's one read brings them closer.
    """
    maybe_sent = [f.size for f in writer if present(f, writer_version) == "depends" and f.size is not None]
    maybe_read = [f.size for f in reader if present(f, reader_version) == "depends" and f.size is not None]
    if not maybe_sent and not maybe_read or len(maybe_sent) + len(maybe_read) > MAX_DEPENDS:
        return False
    # a writer's tested field on the wire adds its size; a reader's one read takes it away
    sums = {difference + sum(maybe_sent)}  # start with every tested field of the writer sent
    for size in maybe_sent:
        sums |= {s - size for s in sums}
    for size in maybe_read:
        sums |= {s - size for s in sums}
        if len(sums) > MAX_SUMS:
            return False
    return 0 in sums
