"""``vmstate edit``'s work on a whole file: set fields by path, or read them, streaming every record through.

The input is anything ``open_records`` reads (a QEMU stream plain or
compressed, a mapped-ram file, a qcow2 snapshot, a libvirt save image, one of
our snapshots); RAM and the sections no edit names pass through as they
were.  The output is written atomically: an edit that names a section the
stream does not have, a path a section does not have, or a value that does
not fit leaves no file behind.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence

from devices.cpu import Target
from streams.convert import write_records
from streams.formats import open_records
from streams.records import Configuration, DeviceState, RawBody, SectionHeader, StreamRecord
from vmstate.errors import EditError
from vmstate.lookup import DescriptionLookup, LookupFunction

from .checks import EditChecks
from .fields import Assignment, edit_section, get_field
from .paths import FieldRef
from .virtio import guess_target, target_for_machine

__all__ = ["edit_file", "get_fields", "refused"]

PathLike = str | os.PathLike[str]
Key = tuple[str, int]


class _Walk:
    """Follows a stream's records: the target they were written for, the sections seen."""

    def __init__(self) -> None:
        self._machine: Target | None = None
        self.seen: list[Key] = []
        self.header: SectionHeader | None = None

    @property
    def target(self) -> Target:
        return self._machine if self._machine is not None else guess_target(idstr for idstr, _ in self.seen)

    def note(self, record: StreamRecord) -> None:
        if isinstance(record, Configuration):
            self._machine = target_for_machine(record.machine)
        elif isinstance(record, SectionHeader):
            self.header = record
        elif isinstance(record, DeviceState):
            self.seen.append((record.idstr, record.instance_id))

    def raw_key(self) -> Key | None:
        """The section a raw body belongs to."""
        header = self.header
        if header is None or header.idstr is None:
            return None
        return header.idstr, header.instance_id or 0


def _missing(refs: Iterable[FieldRef], walk: _Walk) -> EditError:
    ref = next(iter(refs))
    names = sorted({idstr if instance == 0 else f"{idstr}#{instance}" for idstr, instance in walk.seen})
    near = [n for n in names if ref.idstr in n or n in ref.idstr][:5]
    hint = f"; did you mean {', '.join(near)}?" if near else " (migration-diff and vmstate dump print the names)"
    return EditError(f"no section {ref.section!r} in the stream{hint}")


def _raw(key: Key) -> EditError:
    return EditError("this section was kept raw (no description names its fields): it cannot be edited",
                     section=key[0])


def refused(checks: EditChecks) -> EditError:
    """The edit's first load refusal, as one line."""
    first = checks.refusals[0]
    more = len(checks.refusals) - 1
    return EditError(f"QEMU would refuse this on load: {first.qemu_lines[0]} (at {first.path}; it needs {first.fix})"
                     + (f"; and {more} more" if more else "") + "; --force writes it anyway", section=first.section)


def _edited(records: Iterable[StreamRecord], assignments: Sequence[Assignment], walk: _Walk,
            done: set[Key], checks: EditChecks | None = None, force: bool = False) -> Iterator[StreamRecord]:
    pending: dict[Key, list[Assignment]] = {}
    for assignment in assignments:
        pending.setdefault((assignment.ref.idstr, assignment.ref.instance_id), []).append(assignment)
    for record in records:
        walk.note(record)
        if isinstance(record, DeviceState):
            key = (record.idstr, record.instance_id)
            if key in pending:
                before = record
                record = edit_section(record, pending[key], walk.target)  # type: ignore[assignment]
                done.add(key)
                if checks is not None:
                    checks.check(before, record)
        elif isinstance(record, RawBody):
            key_of_raw = walk.raw_key()
            if key_of_raw in pending:
                raise _raw(key_of_raw)
        yield record
    left = [a.ref for key, group in pending.items() if key not in done for a in group]
    if left:
        raise _missing(left, walk)
    if checks is not None and checks.refusals and not force:
        raise refused(checks)


def edit_file(
    source: PathLike,
    out: PathLike,
    assignments: Sequence[Assignment],
    *,
    to: str | None = None,
    descriptions: DescriptionLookup | LookupFunction | None = None,
    checks: EditChecks | None = None,
    force: bool = False,
) -> int:
    """Copy ``source`` to ``out`` with every assignment made; returns how many sections changed.

    ``to``: the output format (``qemu``, ``msgpack``, ``cbor``, ``json``); default: the input's.
    ``checks``: collect what QEMU would refuse in the edited sections; a refusal is an ``EditError``
    and nothing is written, unless ``force``.
    """
    with open_records(source, descriptions=descriptions, fallback="qemu") as opened:
        walk, done = _Walk(), set()  # type: _Walk, set[Key]
        output = to or opened.kind
        write_records(opened, _edited(opened.records, assignments, walk, done, checks, force), out, output)
    return len(done)


def get_fields(
    source: PathLike, refs: Sequence[FieldRef], *, descriptions: DescriptionLookup | LookupFunction | None = None
) -> list[tuple[FieldRef, str]]:
    """Each field's value as ``vmstate edit --get`` prints it, in the order asked."""
    wanted: dict[Key, list[FieldRef]] = {}
    for ref in refs:
        wanted.setdefault((ref.idstr, ref.instance_id), []).append(ref)
    values: dict[FieldRef, str] = {}
    walk = _Walk()
    with open_records(source, descriptions=descriptions, fallback="qemu") as opened:
        for record in opened.records:
            walk.note(record)
            if isinstance(record, DeviceState) and (record.idstr, record.instance_id) in wanted:
                for ref in wanted[(record.idstr, record.instance_id)]:
                    values[ref] = get_field(record, ref.steps, walk.target)
                if len(values) == len(set(refs)):
                    break
            elif isinstance(record, RawBody) and walk.raw_key() in wanted:
                key = walk.raw_key()
                assert key is not None
                raise _raw(key)
    left = [ref for ref in refs if ref not in values]
    if left:
        raise _missing(left, walk)
    return [(ref, values[ref]) for ref in refs]
