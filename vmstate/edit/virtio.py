"""Change virtio devices inside a real QEMU stream and write it back.

Every record is streamed through: RAM pages and sections we do not touch
are written back byte for byte; each virtio device section is turned into a
``VirtIODevice``, handed to the caller's edit function, and saved with
QEMU's rules (so setting a non-default ``device_endian`` adds the
``virtio/device_endian`` subsection).  QEMU ignores the vmdesc trailer on
load, so it is kept as it was.

``VirtioEditor`` is the one path for this (the CLI's edits, the compat
fixtures' write-back and their older-version copies all use it): it infers
the target from the stream and builds each device from its record.

A virtio section our descriptions did not decode (the stream's vmdesc or
the raw scan took over) cannot be edited: that is an ``UnnamedSectionError``
naming the section, never a half-edited device.  ``edit_virtio_stream``
writes a file atomically, so a refused edit leaves no output behind.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Iterable, Iterator
from typing import BinaryIO, TypeVar

import attrs

from devices.cpu import AARCH64, PPC64, X86_64, Target
from devices.registry import vmsd_name_of
from devices.virtio.device import VirtIODevice, virtio_section_of
from devices.virtio.sections import DEVICE_CLASSES
from streams.files import open_stream
from streams.qemu.reader import StreamReader
from streams.qemu.writer import StreamWriter
from streams.records import Configuration, DeviceState, RawBody, SectionHeader, StreamRecord
from streams.snapshots import atomic_write

from ..description import Record
from ..errors import UnnamedSectionError
from ..lookup import TYPED_SOURCE

__all__ = [
    "Edit",
    "VirtioEditor",
    "target_for_machine",
    "guess_target",
    "edit_virtio_records",
    "edit_virtio_devices",
    "edit_virtio_stream",
    "virtio_devices",
]

#: called with a section's idstr and its device, which it changes in place
Edit = Callable[[str, VirtIODevice], None]

R = TypeVar("R", bound=StreamRecord)

_MACHINE_PREFIXES = (("pc", X86_64), ("q35", X86_64), ("pseries", PPC64), ("virt", AARCH64))


def target_for_machine(machine: str) -> Target | None:
    """The QEMU target a machine type name belongs to (``pc-i440fx-7.2`` -> x86_64)."""
    for prefix, target in _MACHINE_PREFIXES:
        if machine == prefix or machine.startswith(prefix + "-"):
            return target
    return None


def guess_target(idstrs: Iterable[str]) -> Target:
    """The target of a stream without a configuration section (the 2.2 layout)."""
    names = set(idstrs)
    if any(n.startswith("spapr") or n.startswith("pci@8000") or "/pci@8000" in n for n in names):
        return PPC64
    if any(n.startswith("virtio-mmio@") or n.startswith("arm") for n in names):
        return AARCH64
    return X86_64


def _no_edit(_idstr: str, _device: VirtIODevice) -> None:
    return None


class VirtioEditor:
    """Rewrite the virtio device sections of a stream, one record at a time, in stream order.

    Call it on every record (it learns the target from the configuration
    section, else from the sections seen so far): a virtio device section
    comes back as ``edit`` left its ``VirtIODevice``, saved with QEMU 7.2's
    rules; every other record comes back as it was.

    ``target``: the stream's target, instead of inferring it.  ``strict``:
    a virtio section our descriptions did not decode is an
    ``UnnamedSectionError`` (else it passes unchanged).  ``names``: only
    sections of these vmsd names (``virtio-net``) are rewritten.
    """

    def __init__(
        self,
        edit: Edit = _no_edit,
        *,
        target: Target | None = None,
        strict: bool = True,
        names: Collection[str] | None = None,
    ) -> None:
        self._edit = edit
        self._given = target
        self._machine: Target | None = None
        self._strict = strict
        self._names = names
        self._seen: list[str] = []
        self._section: str | None = None
        #: how many devices were rewritten
        self.count = 0

    @property
    def target(self) -> Target:
        """The target devices are built for: given, from the machine type, or guessed from the sections seen."""
        if self._given is not None:
            return self._given
        return self._machine if self._machine is not None else guess_target(self._seen)

    def device_of(self, record: StreamRecord) -> VirtIODevice | None:
        """Take note of ``record``; its ``VirtIODevice`` if it is a virtio device section to rewrite."""
        if isinstance(record, SectionHeader):
            self._section = record.idstr
        elif isinstance(record, Configuration):
            self._machine = target_for_machine(record.machine)
        if isinstance(record, DeviceState):
            self._seen.append(record.idstr)
        name = None if self._section is None else vmsd_name_of(self._section)
        if name not in DEVICE_CLASSES or (self._names is not None and name not in self._names):
            return None
        if isinstance(record, DeviceState) and record.source == TYPED_SOURCE:
            section = virtio_section_of(record)
            if section is not None:
                return section.device(self.target)
        if self._strict and isinstance(record, (DeviceState, RawBody)):
            how = f"the {record.source}" if isinstance(record, DeviceState) else "no description (kept raw)"
            raise UnnamedSectionError(
                f"virtio device section decoded by {how}, not by our description: it cannot be edited",
                section=self._section,
            )
        return None

    def __call__(self, record: R) -> R:
        """``record`` as written back: a virtio device section edited and saved, anything else as it was."""
        device = self.device_of(record)
        if device is None:
            return record
        assert isinstance(record, DeviceState)
        self._edit(record.idstr, device)
        fields = dict(record.record.fields, virtio=device.to_record())
        self.count += 1
        return attrs.evolve(record, record=Record(version=record.record.version, fields=fields))  # type: ignore[return-value]


def edit_virtio_records(
    records: Iterable[StreamRecord], edit: Edit, *, target: Target | None = None
) -> Iterator[StreamRecord]:
    """Yield each record as written back, each virtio device section after ``edit`` changed its device.

    An undecoded virtio section is an ``UnnamedSectionError`` when it is reached.
    """
    editor = VirtioEditor(edit, target=target)
    return map(editor, records)


def virtio_devices(source: BinaryIO, *, target: Target | None = None) -> Iterator[tuple[str, VirtIODevice]]:
    """Yield ``(idstr, VirtIODevice)`` for every virtio device section of a stream."""
    from devices import DEFAULT_REGISTRY

    editor = VirtioEditor(target=target)
    for record in StreamReader(source, descriptions=DEFAULT_REGISTRY):
        device = editor.device_of(record)
        if device is not None:
            assert isinstance(record, DeviceState)
            yield record.idstr, device


def edit_virtio_devices(source: BinaryIO, sink: BinaryIO, edit: Edit, *, target: Target | None = None) -> int:
    """Copy a stream from ``source`` to ``sink``, passing each virtio device to ``edit``.

    Returns how many virtio devices were edited.  On an error ``sink`` holds
    a partial copy: write files with ``edit_virtio_stream``.
    """
    from devices import DEFAULT_REGISTRY

    writer = StreamWriter(sink)
    editor = VirtioEditor(edit, target=target)
    for record in StreamReader(source, descriptions=DEFAULT_REGISTRY):
        writer.write(editor(record))
    return editor.count


def edit_virtio_stream(
    source: str | os.PathLike[str], out: str | os.PathLike[str], edit: Edit, *, target: Target | None = None
) -> int:
    """``edit_virtio_devices`` from file ``source`` (plain, xz or gzip) to file ``out``, written atomically.

    ``out`` appears only if every device was edited and written; any error leaves it as it was.
    """
    with open_stream(os.fspath(source)) as stream, atomic_write(out) as sink:
        return edit_virtio_devices(stream, sink, edit, target=target)
