"""Record fixtures: add streams and their goldens to a fixture directory, never changing recorded ones.

When a description changes, the fixtures of the old behaviour stay as they
are and new ones are added next to them:

* ``record_fixtures(DIR, [stream])`` copies a stream (from QEMU, or written
  by our encoder) into ``DIR/streams``, writes its golden from today's
  decoding and adds both to the ledger.  It refuses if the file or golden
  exists, and if today's code does not write the stream back identically.
* ``at_version={"virtio-net": 10}`` records a copy in which that section is
  written at an older version by today's state class (how
  ``compat_fixtures/old_layouts.py`` made the older virtio-net streams).
* ``adopt_fixtures(DIR)`` adds fixtures that already have a golden to the
  ledger, leaving their bytes alone.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from ..description import Record
from ..errors import VMStateError
from ..lookup import TYPED_SOURCE
from ..typed import description_of, from_record, to_record
from .errors import CompatError, FixtureError, ImmutableFixtureError
from .fixture_format import DescriptionLookup
from .fixtures import (
    LedgerEntry,
    append_ledger,
    discover,
    format_of,
    golden_path,
    read_ledger,
    sha256_of,
)

if TYPE_CHECKING:
    from streams.qemu import DeviceState, StreamWriter

    from ..edit.virtio import VirtioEditor

__all__ = ["adopt_fixtures", "record_fixtures", "write_older"]


def _older(value: Record, description: Any, version: int) -> Record:
    """A section's record written at ``version`` by today's state class."""
    if description.cls is None or description_of(description.cls) != description:
        raise CompatError(f"{description.name} has no state class to write it at v{version}")
    return to_record(from_record(description.cls, value), version=version)


def _older_part(versions: Mapping[str, int]) -> Any:
    """The edit that writes a virtio device's own part at its version in ``versions``."""
    from devices.virtio.device import VirtIODevice

    def edit(_idstr: str, device: VirtIODevice) -> None:
        version = versions[device.savevm_name]
        cls = device.part_class
        if cls is None or device.device is None:
            raise CompatError(f"{device.savevm_name} has no device part of its own to write at v{version}")
        device.record.fields["device"] = to_record(from_record(cls, device.device), version=version)
        device.record.version = version

    return edit


def _write_older_section(writer: StreamWriter, record: DeviceState, version: int, virtio: VirtioEditor) -> None:
    """Write a section of ours at ``version``: a virtio device through ``virtio``, any other by its state class."""
    if record.source != TYPED_SOURCE:
        raise CompatError(f"{record.idstr}: decoded by {record.source}, not by a description of ours")
    try:
        edited = virtio(record)
        older = edited.record if edited is not record else _older(record.record, record.description, version)
        writer.write(attrs.evolve(record, version=version, record=older))
    except VMStateError as error:
        raise CompatError(f"{record.idstr}: today's code cannot write it at v{version}: {error}") from None


def write_older(source: Path, out: Path, versions: Mapping[str, int], descriptions: DescriptionLookup | None = None) -> int:
    """Copy the stream ``source`` to ``out`` with the sections named in ``versions`` written at those versions.

    Returns how many sections were rewritten; every other byte is the source's.
    A virtio device goes through ``VirtIODevice`` (``vmstate.edit``), its own part at the older version.
    """
    from devices import DEFAULT_REGISTRY
    from devices.registry import vmsd_name_of
    from streams.files import open_stream
    from streams.qemu import DeviceState, SectionHeader, StreamReader, StreamWriter

    from ..edit.virtio import VirtioEditor

    lookup = DEFAULT_REGISTRY if descriptions is None else descriptions
    virtio = VirtioEditor(_older_part(versions), strict=False, names=versions)
    count = 0
    with open_stream(source) as reader_file, open(out, "wb") as sink:
        writer = StreamWriter(sink)
        for record in StreamReader(reader_file, descriptions=lookup):
            match record:
                case SectionHeader(idstr=str() as idstr, version=int()) if vmsd_name_of(idstr) in versions:
                    writer.write(attrs.evolve(virtio(record), version=versions[vmsd_name_of(idstr)]))
                case DeviceState() if vmsd_name_of(record.idstr) in versions:
                    _write_older_section(writer, record, versions[vmsd_name_of(record.idstr)], virtio)
                    count += 1
                case _:
                    writer.write(virtio(record))  # sees every record (the target); rewrites only sections in ``versions``
    if not count:
        raise CompatError(f"{source}: no section named {', '.join(versions)}")
    return count


def _golden_text(decoding: Any) -> str:
    # the shape compat_fixtures/expected.py writes
    return json.dumps(decoding, sort_keys=True, separators=(",", ":")) + "\n"


def _unnamed_sections(decoding: Any) -> list[str]:
    """``idstr: why`` for each section of a decoding that our descriptions should have named and did not."""
    sections = decoding.get("sections", []) if isinstance(decoding, dict) else []
    return [f"{s.get('idstr')}: {s['unnamed']}" for s in sections if isinstance(s, dict) and s.get("unnamed")]


def _copy_new(source: Path, dest: Path, created: list[Path]) -> None:
    """Copy ``source`` to the new file ``dest``: ``O_EXCL`` never follows a link nor opens what is there."""
    with open(source, "rb") as reader, open(dest, "xb") as writer:
        created.append(dest)
        shutil.copyfileobj(reader, writer, 1 << 20)


def record_fixtures(directory: str | Path, sources: list[Path], *, names: list[str] | None = None,
                    origin: str = "recorded", at_version: Mapping[str, int] | None = None,
                    descriptions: DescriptionLookup | None = None) -> list[LedgerEntry]:
    """Add each source stream as a new fixture with its golden; nothing existing is touched."""
    root = Path(directory)
    (root / "streams").mkdir(parents=True, exist_ok=True)
    names = names or [s.name for s in sources]
    if len(names) != len(sources):
        raise CompatError("give one name per stream")
    ledger = read_ledger(root)
    planned = []
    for source, name in zip(sources, names):
        dest = root / "streams" / name
        found = format_of(dest)
        if found is None:
            raise CompatError(f"{name}: no fixture format claims this name (QEMU streams end in .mig, .mig.xz, .mig.gz)")
        golden = golden_path(root, dest)
        relative = dest.relative_to(root).as_posix()
        for path in (dest, golden):
            if os.path.lexists(path) or relative in ledger:  # a symlink, even dangling, is never written through
                raise ImmutableFixtureError(f"{path.relative_to(root)} exists: recorded fixtures are never rewritten; "
                                            "record under a new name")
        planned.append((source, dest, golden, found[0]))
    entries = []
    created: list[Path] = []
    try:
        for source, dest, golden, fixture_format in planned:
            if at_version:
                with tempfile.TemporaryDirectory() as scratch:
                    staged = Path(scratch) / dest.name
                    write_older(source, staged, at_version, descriptions)
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    _copy_new(staged, dest, created)
            else:
                dest.parent.mkdir(parents=True, exist_ok=True)
                _copy_new(source, dest, created)
            outcome = fixture_format.run(dest, descriptions)
            if outcome.rewrite is not None and not outcome.rewrite.identical:
                raise CompatError(f"{dest.name}: today's code does not write it back identically (first difference "
                                  f"at byte {outcome.rewrite.first_difference:#x} in {outcome.rewrite.where}); not recorded")
            unnamed = _unnamed_sections(outcome.decoding)
            if unnamed:
                raise CompatError(f"{dest.name}: our descriptions did not name {len(unnamed)} section(s) "
                                  f"({'; '.join(unnamed)}); a golden would freeze the fallback, not recorded")
            golden.parent.mkdir(parents=True, exist_ok=True)
            with open(golden, "x") as file:
                created.append(golden)
                file.write(_golden_text(outcome.decoding))
            entries.append(LedgerEntry(fixture=dest.relative_to(root).as_posix(), sha256=sha256_of(dest),
                                       golden=golden.relative_to(root).as_posix(), golden_sha256=sha256_of(golden),
                                       origin=origin))
    except BaseException:
        for path in created:  # only files this call created, never a recorded one
            path.unlink(missing_ok=True)
        raise
    append_ledger(root, entries)
    return entries


def adopt_fixtures(directory: str | Path, *, origin: str = "adopted",
                   only: Iterable[str] | None = None) -> list[LedgerEntry]:
    """Add fixtures that have a golden but no ledger entry to the ledger, as they are.

    ``only``: adopt just the fixtures whose name contains one of these.
    """
    root = Path(directory)
    ledger = read_ledger(root)
    wanted = None if only is None else list(only)
    entries = []
    for fixture in discover(root):
        if fixture.name in ledger or (wanted is not None and not any(w in fixture.name for w in wanted)):
            continue
        if not fixture.golden.exists():
            raise FixtureError(f"{fixture.name} has no golden: record it instead of adopting it")
        entries.append(LedgerEntry(fixture=fixture.name, sha256=sha256_of(fixture.path),
                                   golden=fixture.golden.relative_to(root).as_posix(),
                                   golden_sha256=sha256_of(fixture.golden), origin=origin))
    append_ledger(root, entries)
    return entries
