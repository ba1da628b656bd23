"""QEMU migration streams as fixtures: decode with today's code and write back with it.

One pass over the stream feeds both the summary that goldens hold
(``streams.qemu.summarize``) and the write-back.  The write-back is what
today's code *writes* for the state it read, not an echo of the bytes:

* a virtio device goes through ``VirtIODevice`` (QEMU 7.2's ``needed`` rules
  decide its ``virtio/...`` subsections);
* a section or device part with a state class of ours goes through it
  (``from_record`` then ``to_record`` at the stream's version), so older
  versions are written by today's version gates and save hooks;
* every record's subsections are put in the order its description declares,
  as QEMU's ``vmstate_subsection_save`` writes them.

The result is compared byte for byte with the fixture.  This adapter is the
one module of ``vmstate.compat`` that uses ``streams`` and ``devices``; it is
imported only when QEMU stream fixtures are checked (``fixtures.formats``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import attrs

from devices import DEFAULT_REGISTRY
from devices.virtio.device import VirtIODevice
from streams.formats import open_records
from streams.qemu import (
    DeviceState,
    SectionHeader,
    encode_record,
    summarize,
)

from ..compare_bytes import first_difference
from ..description import Description, Record
from ..edit.virtio import VirtioEditor
from ..lookup import TYPED_SOURCE
from ..schema import description_to_json
from ..typed import description_of, from_record, to_record
from .fixture_format import DescriptionLookup, Outcome, Rewrite

__all__ = ["QEMU_STREAMS", "QemuStreams", "canonical_order"]


def _subsection_order(description: Description) -> dict[str, int]:
    """Declared position of every subsection a description (and its custom layouts) names."""
    index: dict[str, int] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            subs = node.get("subsections")
            if isinstance(subs, list):
                for position, sub in enumerate(subs):
                    if isinstance(sub, dict) and isinstance(sub.get("name"), str):
                        index.setdefault(sub["name"], position)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(description_to_json(description))
    return index


def canonical_order(value: Any, order: dict[str, int]) -> Any:
    """A copy of a decoded value with every record's subsections in declared order."""
    if isinstance(value, Record):
        names = sorted(value.subsections, key=lambda name: order.get(name, len(order)))
        return Record(
            version=value.version,
            fields={k: canonical_order(v, order) for k, v in value.fields.items()},
            subsections={name: canonical_order(value.subsections[name], order) for name in names},
        )
    if isinstance(value, list):
        return [canonical_order(v, order) for v in value]
    return value


def _typed(record: Record, description: Description, notes: set[str]) -> Record:
    """Write ``record`` again through its state class, if it has one and it is unchanged.

    A subsection the stream carries but the class's ``needed`` test leaves out
    depends on something the state class does not hold (a negotiated feature,
    a device property): it is kept as read, and a note says so.
    """
    cls = description.cls
    if cls is None or description_of(cls) != description:
        return record  # no state class, or a description built apart from it (a test's mutation)
    written = to_record(from_record(cls, record), version=record.version)
    for name, sub in record.subsections.items():
        if name not in written.subsections:
            written.subsections[name] = sub
            notes.add(f"{name}: in the stream, but {cls.__name__}'s `needed` test cannot tell from the state "
                      "it holds; kept as read")
    return written


class _Rewriter:
    """Re-encodes records as today's code writes them and compares with the original bytes."""

    def __init__(self, original: Any) -> None:
        self._original = original
        self._orders: dict[int, dict[str, int]] = {}
        self._idstrs: dict[int, str] = {}
        self._where = "file header"
        # every virtio device through VirtIODevice; a section we did not decode is compared as read
        self._virtio = VirtioEditor(self._retype_part, strict=False)
        self.size = 0
        self.first_difference: int | None = None
        self.where: str | None = None
        self.notes: set[str] = set()

    def _retype_part(self, _idstr: str, device: VirtIODevice) -> None:
        """The device's own part through its state class, as every other section is."""
        part, cls = device.device, device.part_class
        if isinstance(part, Record) and cls is not None:
            device.record.fields["device"] = _typed(part, description_of(cls), self.notes)

    def _rewritten(self, record: Any) -> Any:
        rewritten = self._virtio(record)
        description = record.description
        value = rewritten.record if rewritten is not record else _typed(record.record, description, self.notes)
        order = self._orders.get(id(description))
        if order is None:
            order = self._orders[id(description)] = _subsection_order(description)
        return attrs.evolve(record, record=canonical_order(value, order))

    def feed(self, record: Any) -> None:
        """Write one record as today's code would and compare it with the next original bytes."""
        if isinstance(record, SectionHeader):
            if record.idstr is not None:
                self._idstrs[record.section_id] = record.idstr
            self._where = self._idstrs.get(record.section_id, f"section {record.section_id}")
        if isinstance(record, DeviceState) and record.source == TYPED_SOURCE:
            record = self._rewritten(record)
        else:
            self._virtio(record)  # the editor learns the target from every record
        data = encode_record(record)
        expected = self._original.read(len(data))
        at = first_difference(data, expected) if self.first_difference is None else None
        if at is not None:
            self.first_difference, self.where = self.size + at, self._where
        self.size += len(data)

    def result(self) -> Rewrite:
        """The verdict, once every record was fed."""
        if self.first_difference is None and self._original.read(1):
            self.first_difference, self.where = self.size, "end of stream (the original is longer)"
        return Rewrite(identical=self.first_difference is None, size=self.size,
                       first_difference=self.first_difference, where=self.where, notes=tuple(sorted(self.notes)))


def _tee(records: Iterable[Any], rewriter: _Rewriter) -> Iterator[Any]:
    for record in records:
        rewriter.feed(record)
        yield record


class QemuStreams:
    """The fixture format of QEMU migration streams (plain, xz or gzip)."""

    name = "qemu"
    suffixes = (".mig", ".mig.xz", ".mig.gz")

    def run(self, path: Path, descriptions: DescriptionLookup | None) -> Outcome:
        """Summarize the stream (the golden's shape) and write it back, in one pass."""
        if descriptions is None:
            descriptions = DEFAULT_REGISTRY
        # one unpacking of a compressed fixture serves the reader and the comparison
        with open_records(path, descriptions=descriptions, expect="qemu", pair=True) as opened:
            rewriter = _Rewriter(opened.original)
            summary = summarize(_tee(opened.records, rewriter))
            rewrite = rewriter.result()
        # goldens are JSON: compare like with like
        return Outcome(decoding=json.loads(json.dumps(summary)), rewrite=rewrite)


QEMU_STREAMS = QemuStreams()
