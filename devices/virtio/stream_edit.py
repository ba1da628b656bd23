"""Change virtio devices inside a real QEMU stream and write it back.

Every record is streamed through: RAM pages and sections we do not touch
are written back byte for byte; each virtio device section is turned into a
``VirtIODevice``, handed to the caller's edit function, and saved with
QEMU's rules (so setting a non-default ``device_endian`` adds the
``virtio/device_endian`` subsection).  QEMU ignores the vmdesc trailer on
load, so it is kept as it was.

A virtio section our descriptions did not decode (the stream's vmdesc or
the raw scan took over) cannot be edited: that is an ``UnnamedSectionError``
naming the section, never a half-edited device.  ``edit_virtio_stream``
writes a file atomically, so a refused edit leaves no output behind.
"""

from __future__ import annotations

import os
from typing import BinaryIO, Callable, Iterable

import attrs

from streams.files import open_stream
from streams.qemu.reader import StreamReader
from streams.qemu.writer import StreamWriter
from streams.records import Configuration, DeviceState, RawBody, SectionHeader, StreamRecord
from streams.selfdesc import atomic_write
from vmstate.description import Record
from vmstate.errors import UnnamedSectionError

from ..cpu import AARCH64, PPC64, X86_64, Target
from ..registry import vmsd_name_of
from .device import VirtIODevice
from .sections import DEVICE_CLASSES

__all__ = ["target_for_machine", "guess_target", "edit_virtio_devices", "edit_virtio_stream", "virtio_devices"]

Edit = Callable[[str, VirtIODevice], None]

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


def _is_virtio(record: StreamRecord, idstr: str | None) -> bool:
    """True for a virtio device section we decoded; raise if it is one we should have and did not."""
    if idstr is None or vmsd_name_of(idstr) not in DEVICE_CLASSES:
        return False
    if isinstance(record, DeviceState) and record.source == "typed" and isinstance(record.record.fields.get("virtio"), Record):
        return True
    if isinstance(record, (DeviceState, RawBody)):
        how = f"the {record.source}" if isinstance(record, DeviceState) else "no description (kept raw)"
        raise UnnamedSectionError(
            f"virtio device section decoded by {how}, not by our description: it cannot be edited", section=idstr
        )
    return False


def _section_of(record: StreamRecord, current: str | None) -> str | None:
    if isinstance(record, SectionHeader):
        return record.idstr
    return current


def _target(current: Target | None, idstrs: list[str]) -> Target:
    return current if current is not None else guess_target(idstrs)


def virtio_devices(source: BinaryIO, *, target: Target | None = None) -> Iterable[tuple[str, VirtIODevice]]:
    """Yield ``(idstr, VirtIODevice)`` for every virtio device section of a stream."""
    from devices import DEFAULT_REGISTRY

    seen: list[str] = []
    section: str | None = None
    for record in StreamReader(source, descriptions=DEFAULT_REGISTRY):
        section = _section_of(record, section)
        if isinstance(record, Configuration) and target is None:
            target = target_for_machine(record.machine)
        if isinstance(record, DeviceState):
            seen.append(record.idstr)
        if _is_virtio(record, section):
            assert isinstance(record, DeviceState)
            yield record.idstr, VirtIODevice.from_record(
                vmsd_name_of(record.idstr), record.record.fields["virtio"], _target(target, seen)
            )


def edit_virtio_devices(source: BinaryIO, sink: BinaryIO, edit: Edit, *, target: Target | None = None) -> int:
    """Copy a stream from ``source`` to ``sink``, passing each virtio device to ``edit``.

    Returns how many virtio devices were edited.  On an error ``sink`` holds
    a partial copy: write files with ``edit_virtio_stream``.
    """
    from devices import DEFAULT_REGISTRY

    writer = StreamWriter(sink)
    seen: list[str] = []
    section: str | None = None
    count = 0
    for record in StreamReader(source, descriptions=DEFAULT_REGISTRY):
        section = _section_of(record, section)
        if isinstance(record, Configuration) and target is None:
            target = target_for_machine(record.machine)
        if isinstance(record, DeviceState):
            seen.append(record.idstr)
        if _is_virtio(record, section):
            assert isinstance(record, DeviceState)
            device = VirtIODevice.from_record(
                vmsd_name_of(record.idstr), record.record.fields["virtio"], _target(target, seen)
            )
            edit(record.idstr, device)
            fields = dict(record.record.fields, virtio=device.to_record())
            record = attrs.evolve(record, record=Record(version=record.record.version, fields=fields))
            count += 1
        writer.write(record)
    return count


def edit_virtio_stream(
    source: str | os.PathLike[str], out: str | os.PathLike[str], edit: Edit, *, target: Target | None = None
) -> int:
    """``edit_virtio_devices`` from file ``source`` (plain, xz or gzip) to file ``out``, written atomically.

    ``out`` appears only if every device was edited and written; any error leaves it as it was.
    """
    with open_stream(source) as stream, atomic_write(out) as sink:
        return edit_virtio_devices(stream, sink, edit, target=target)
