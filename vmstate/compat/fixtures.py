"""A fixture directory: its layout, the fixture formats, and the ledger that freezes fixtures.

Layout (the repository's ``compat_fixtures/`` is one; point the check at yours)::

    DIR/streams/**/NAME.mig[.xz|.gz]     QEMU migration streams (any format registered here:
                                         also snapshots, NAME.msgpack, NAME.cbor, NAME.snapshot.json)
    DIR/expected/**/NAME.json            the golden decoding of each, same relative path
    DIR/schema/fixtures.lock.json        the ledger: sha256 of every recorded fixture and golden

A fixture format turns a file into its decoding (what the golden holds) and
says whether today's code writes it back byte for byte.  QEMU streams and
our snapshots (``streams.snapshots``) are built in; other formats plug in with
``register_format`` or the ``vmstate_forge.fixture_formats`` entry point.
Recorded fixtures never change: the ledger makes a rewritten or deleted
fixture (or golden) an error of the check.
"""

from __future__ import annotations

import hashlib
import json
from importlib import metadata
from pathlib import Path

import attrs

from .errors import FixtureError, ImmutableFixtureError
from .fixture_format import FixtureFormat, Outcome, Rewrite

__all__ = [
    "LEDGER",
    "Fixture",
    "FixtureFormat",
    "LedgerEntry",
    "Outcome",
    "Rewrite",
    "append_ledger",
    "discover",
    "format_of",
    "formats",
    "golden_path",
    "read_ledger",
    "register_format",
    "sha256_of",
    "verify_ledger",
]

#: the ledger's place inside a fixture directory
LEDGER = Path("schema") / "fixtures.lock.json"
_LEDGER_FORMAT = 1
_FORMATS: list[FixtureFormat] = []
_ENTRY_POINTS_LOADED = False


def register_format(fixture_format: FixtureFormat) -> None:
    """Make the dynamic check and ``record`` handle another kind of fixture file."""
    if all(f.name != fixture_format.name for f in _FORMATS):
        _FORMATS.append(fixture_format)


def formats() -> list[FixtureFormat]:
    """The registered formats: QEMU streams, then plug-ins (entry points loaded once)."""
    global _ENTRY_POINTS_LOADED
    if not _FORMATS:
        from .qemu_format import QEMU_STREAMS
        from .snapshot_format import SNAPSHOTS

        register_format(QEMU_STREAMS)
        register_format(SNAPSHOTS)
    if not _ENTRY_POINTS_LOADED:
        _ENTRY_POINTS_LOADED = True
        for entry in metadata.entry_points(group="vmstate_forge.fixture_formats"):
            register_format(entry.load())
    return list(_FORMATS)


@attrs.frozen(kw_only=True)
class Fixture:
    """One fixture file of a directory."""

    path: Path
    #: relative to the fixture directory, with ``/``: the fixture's name in reports and the ledger
    name: str
    format: FixtureFormat = attrs.field(eq=False)
    golden: Path


def format_of(path: Path) -> tuple[FixtureFormat, str] | None:
    """The format claiming a file name, and the suffix it claims it by."""
    for fixture_format in formats():
        for suffix in sorted(fixture_format.suffixes, key=len, reverse=True):
            if path.name.endswith(suffix) and len(path.name) > len(suffix):
                return fixture_format, suffix
    return None


def golden_path(directory: Path, path: Path) -> Path:
    """Where the golden of a fixture lives: ``expected/`` + its path under ``streams/``, as ``.json``."""
    found = format_of(path)
    stem = path.name[: -len(found[1])] if found else path.stem
    relative = path.parent.relative_to(directory / "streams")
    return directory / "expected" / relative / f"{stem}.json"


def discover(directory: Path) -> list[Fixture]:
    """Every fixture under ``DIR/streams`` that a registered format claims, sorted by name."""
    streams = directory / "streams"
    if not streams.is_dir():
        raise FixtureError(f"{directory}: no streams/ directory (see vmstate.compat.fixtures for the layout)")
    found = []
    for path in sorted(p for p in streams.rglob("*") if p.is_file()):
        claimed = format_of(path)
        if claimed is not None:
            found.append(Fixture(path=path, name=path.relative_to(directory).as_posix(), format=claimed[0],
                                 golden=golden_path(directory, path)))
    return found


def sha256_of(path: Path) -> str:
    """The file's SHA-256, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        while chunk := source.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@attrs.frozen(kw_only=True)
class LedgerEntry:
    """A recorded fixture: the exact bytes of the file and of its golden."""

    fixture: str
    sha256: str
    golden: str
    golden_sha256: str
    #: where the bytes came from: ``qemu 7.2``, ``our encoder``, ``adopted``...
    origin: str = ""

    def as_json(self) -> dict[str, str]:
        """The entry as the ledger file stores it (its name is the key)."""
        return {"sha256": self.sha256, "golden": self.golden, "golden_sha256": self.golden_sha256, "origin": self.origin}


def read_ledger(directory: Path) -> dict[str, LedgerEntry]:
    """The recorded fixtures of ``directory`` by name; empty if it has no ledger yet."""
    path = directory / LEDGER
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
        if data.get("format") != _LEDGER_FORMAT:
            raise FixtureError(f"{path}: unknown ledger format {data.get('format')!r}")
        return {name: LedgerEntry(fixture=name, **entry) for name, entry in data["fixtures"].items()}
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise FixtureError(f"{path}: unreadable ledger: {error}") from None


def append_ledger(directory: Path, entries: list[LedgerEntry]) -> None:
    """Add entries to the ledger; an entry already there is never replaced."""
    ledger = read_ledger(directory)
    for entry in entries:
        if entry.fixture in ledger:
            raise ImmutableFixtureError(f"{entry.fixture} is already recorded: recorded fixtures never change")
        ledger[entry.fixture] = entry
    path = directory / LEDGER
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "format": _LEDGER_FORMAT,
        "about": "recorded compatibility fixtures: never rewrite or delete one (vmstate compat record adds)",
        "fixtures": {name: ledger[name].as_json() for name in sorted(ledger)},
    }
    path.write_text(json.dumps(data, indent=1) + "\n")


def verify_ledger(directory: Path, ledger: dict[str, LedgerEntry]) -> list[str]:
    """What happened to recorded fixtures: each deleted or rewritten file, as one line."""
    problems = []
    for name, entry in sorted(ledger.items()):
        for what, relative, digest in (("fixture", name, entry.sha256), ("golden", entry.golden, entry.golden_sha256)):
            path = directory / relative
            if not path.exists():
                problems.append(f"{relative}: recorded {what} was deleted (recorded fixtures are never deleted)")
            elif sha256_of(path) != digest:
                problems.append(f"{relative}: recorded {what} was rewritten (sha256 differs from the ledger; "
                                "record a new fixture instead)")
    return problems
