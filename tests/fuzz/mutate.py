"""Seeds from the fixture corpus, and the mutations the fuzzer applies to them.

A seed is a small real input: a QEMU stream from ``compat_fixtures/streams``
with all but a few RAM pages dropped (as ``tests/streams/qemu/test_hostile.py``'s
``reduced``, but keeping two consecutive full pages so that ``RamPageRun``s
occur), with or without its vmdesc trailer; that stream as a snapshot in
each codec; or compressed with gzip or xz.

Mutations are byte-level (bit flips, interesting bytes and words, length
inflation, deletions, insertions, record duplication, splices between seeds,
truncation, extreme numbers in JSON text), aimed at record boundaries (where
the type bytes, lengths and ids are) more than at page contents, and
structure-aware (``field``: one device section or snapshot item decoded,
one value in it changed or dropped, and re-encoded: well-formed bytes that
say odd things; in a schema file, one JSON value replaced by deep nesting,
a float, null, a 5,000-digit integer, a lone surrogate or a container of
the wrong kind).  ``nest`` inserts a snapshot item of millions of nested
empty lists (small in bytes, huge as objects); ``blockname`` renames a RAM
block to a long name full of slashes (longer than NAME_MAX once escaped).
The reader-side hostile classes of issue 12: ``vmdesc`` (deep nesting, wrong
entry types, lone surrogates, a great many values), ``tail`` (data after the
end), ``grow`` (a long run inside a section, so that its end is scanned for)
and ``pages`` (large or odd page sizes).

Schema seeds (kind ``schema``) are small parts of a real QEMU 7.2
``-dump-vmstate`` file and of our schema export, for ``vmstate compat diff``.

A snapshot is verified by SHA-256 before any item is decoded, so its items
(the ``payload``) are mutated and then re-sealed with a valid tail by the
project's own ``ContainerWriter``, the index offset moved along with the
bytes before it (the approach of tests/streams/snapshots/test_snapshot_hostile.py's ``seal``).
"""

from __future__ import annotations

import gzip
import io
import json
import lzma
import random
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

import attrs

from devices import DEFAULT_REGISTRY
from streams.qemu import (
    Configuration,
    DeviceState,
    Eof,
    RamBlockList,
    RamPage,
    RamZero,
    StreamReader,
    StreamRecord,
    StreamWriter,
    VmDescription,
    encode_record,
)
from streams.records import SectionType
from streams.snapshots import CODECS, save_snapshot, verify, write_records
from streams.snapshots._container import PREAMBLE_SIZE, TAIL_SIZE, ContainerWriter
from streams.snapshots._window import ContentWindow
from vmstate.description import Record
from vmstate.errors import VMStateError
from vmstate.limits import DEFAULT_LIMITS

from . import hostile

__all__ = [
    "CORPUS",
    "QEMU_SEEDS",
    "Mutant",
    "Mutator",
    "Seed",
    "all_seeds",
    "compressed_seed",
    "devices_snapshot_seed",
    "schema_seeds",
    "has_vmdesc",
    "qemu_seed",
    "reseal",
    "snapshot_seed",
]

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "compat_fixtures" / "streams"
#: small streams of every layout: 2.2 (no footers, no vmdesc), 2.4, 7.2 pc/q35 legacy and modern, ppc64, aarch64 mmio
QEMU_SEEDS = (
    "pc-2.2-virtio-all.mig",
    "pc-2.4-virtio-all.mig",
    "pc-7.2-virtio-all-legacy.mig",
    "pc-7.2-virtio-net-modern.mig",
    "q35-7.2-virtio-serial-legacy.mig",
    "q35-7.2-virtio-blk-modern.mig",
    "virt-7.2-virtio-mmio-all.mig",
    "pseries-2.2-virtio-all.mig",
)
#: bytes that mean something in a stream: EOF, START..FULL, SUBSECTION, vmdesc, configuration, command, footer
INTERESTING_BYTES = (0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x10, 0x20, 0x7E, 0x7F, 0x80, 0xFF)
_WIDTHS = (1, 2, 4, 8)


@dataclass(frozen=True)
class Seed:
    """One valid input; ``payload`` is what gets mutated (a stream, or a snapshot's items)."""

    name: str
    #: ``qemu`` or a snapshot codec name
    kind: str
    payload: bytes
    #: where records (or items) start in ``payload``
    boundaries: tuple[int, ...]
    #: qemu: offset of the EOF byte (the device state ends there), else len(payload)
    eof: int
    #: snapshots: file offset of the index item
    index_offset: int = 0
    #: (start, end, decoded value) of what structure-aware mutation rewrites: device sections, snapshot items
    units: tuple[tuple[int, int, Any], ...] = ()

    def build(self, payload: bytes, edits: Sequence[tuple[int, int]] = ()) -> bytes:
        """The input a target reads: the payload itself, or the items re-sealed in a valid frame."""
        if self.kind not in CODECS:
            return payload
        return reseal(self.kind, payload, shift(self.index_offset - PREAMBLE_SIZE, edits) + PREAMBLE_SIZE)

    @property
    def data(self) -> bytes:
        """The unmutated input."""
        return self.build(self.payload)


def reseal(codec: str, content: bytes, index_offset: int) -> bytes:
    """A snapshot file around ``content`` with a valid tail (index offset clamped into the items)."""
    sink = io.BytesIO()
    writer = ContainerWriter(sink, codec)
    writer.write_item(content)
    writer.finish(min(max(index_offset, PREAMBLE_SIZE), PREAMBLE_SIZE + max(len(content) - 1, 0)))
    return sink.getvalue()


def shift(offset: int, edits: Sequence[tuple[int, int]]) -> int:
    """Where ``offset`` went after ``edits`` ((position, size change) in the order applied)."""
    for position, delta in edits:
        if delta >= 0:
            if position <= offset:
                offset += delta
        elif position - delta <= offset:
            offset += delta
        elif position < offset:
            offset = position
    return offset


# ---------------------------------------------------------------- seeds


_CONTINUE = 0x20


@cache
def _reduced_records(name: str) -> tuple[StreamRecord, ...]:
    """A corpus stream's records with two zero pages and two consecutive full pages of RAM kept."""
    kept: list[StreamRecord] = []
    zeros = 0
    previous: RamPage | None = None
    paired = False
    with open(CORPUS / name, "rb") as source:
        for record in StreamReader(source, descriptions=DEFAULT_REGISTRY):
            if isinstance(record, RamZero):
                zeros += 1
                if zeros <= 2:
                    kept.append(record)
            elif isinstance(record, RamPage):
                if not paired and previous is not None and _follows(previous, record) \
                        and (not previous.flags & _CONTINUE or _last_block(kept) == previous.block):
                    kept += [previous, record]
                    paired = True
                previous = record
            else:
                kept.append(record)
    return tuple(kept)


def _follows(first: RamPage, second: RamPage) -> bool:
    return bool(second.flags & _CONTINUE) and second.block == first.block and second.offset == first.offset + len(first.data)


def _last_block(kept: Sequence[StreamRecord]) -> str | None:
    """The block of the last kept page record: the one a CONTINUE page after it belongs to."""
    return next((r.block for r in reversed(kept) if isinstance(r, (RamPage, RamZero))), None)


def _encode(records: Sequence[StreamRecord]) -> tuple[bytes, tuple[int, ...], int, tuple[tuple[int, int, Any], ...]]:
    out = io.BytesIO()
    writer = StreamWriter(out)
    starts: list[int] = []
    units: list[tuple[int, int, Any]] = []
    eof = -1
    for record in records:
        start = writer.offset
        starts.append(start)
        if isinstance(record, Eof):
            eof = start
        writer.write(record)
        if isinstance(record, (DeviceState, Configuration)):
            units.append((start, writer.offset, record))
    return out.getvalue(), tuple(starts), eof, tuple(units)


@cache
def qemu_seed(name: str, vmdesc: bool = True) -> Seed:
    """A reduced corpus stream; without ``vmdesc`` it ends with the EOF byte (still a valid stream)."""
    records = _reduced_records(name)
    if not vmdesc:
        assert any(isinstance(r, VmDescription) for r in records), f"{name} has no vmdesc to drop"
        records = records[: next(i for i, r in enumerate(records) if isinstance(r, Eof)) + 1]
    data, starts, eof, units = _encode(records)
    return Seed(f"{name}{'' if vmdesc else '-novmdesc'}", "qemu", data, starts, eof, units=units)


def _snapshot_seed(name: str, codec: str, data: bytes) -> Seed:
    container = verify(io.BytesIO(data))
    window = ContentWindow(io.BytesIO(data), container.content_start, container.content_end)
    items = list(CODECS[codec].items(window, DEFAULT_LIMITS))
    content = data[PREAMBLE_SIZE:-TAIL_SIZE]
    starts = tuple(offset - PREAMBLE_SIZE for offset, _ in items)
    units = tuple((start, end, item) for start, end, (_, item) in zip(starts, (*starts[1:], len(content)), items))
    return Seed(f"{name}.{codec}", codec, content, starts, len(content), container.index_offset, units)


@cache
def snapshot_seed(codec: str, name: str = "pc-7.2-virtio-all-legacy.mig") -> Seed:
    """A reduced corpus stream written as a snapshot in ``codec``."""
    out = io.BytesIO()
    write_records(_reduced_records(name), out, codec=codec)
    return _snapshot_seed(name, codec, out.getvalue())


@cache
def devices_snapshot_seed(codec: str) -> Seed:
    """A devices-only snapshot of three typed states (no RAM, no framing records)."""
    from devices.machine import CpuCommon, GlobalState, Timer

    states = {"timer": Timer(cpu_ticks_offset=7), "cpu_common": CpuCommon(halted=1), "globalstate": GlobalState(size=6)}  # type: ignore[call-arg]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "devices"
        save_snapshot(path, states, codec=codec)
        return _snapshot_seed("devices", codec, path.read_bytes())


def has_vmdesc(name: str) -> bool:
    """True if the corpus stream ends with a vmdesc trailer (machine types >= 2.3)."""
    return any(isinstance(r, VmDescription) for r in _reduced_records(name))


#: the streams offered compressed (small ones: the compressed bytes are what gets mutated)
COMPRESSED_SEEDS = (
    ("pc-2.2-virtio-all.mig", True),
    ("pc-7.2-virtio-all-legacy.mig", False),
    ("virt-7.2-virtio-mmio-all.mig", False),
)
COMPRESSORS = {"gzip": lambda data: gzip.compress(data, mtime=0), "xz": lzma.compress}


@cache
def compressed_seed(name: str, vmdesc: bool, method: str) -> Seed:
    """A reduced stream compressed with ``gzip`` or ``xz``, as streams are often kept (read through ``open_stream``)."""
    data = COMPRESSORS[method](qemu_seed(name, vmdesc).data)
    # the framing: header (gzip 10 bytes, xz 12), first block, index and footer (xz 12), CRC-32 and size (gzip 8)
    boundaries = (0, 10, 12, len(data) - 12, len(data) - 8)
    return Seed(f"{qemu_seed(name, vmdesc).name}.{method}", method, data, boundaries, len(data))


#: (file, keys kept): a QEMU dump with a subsection and nested structs, and our export with a virtio device
SCHEMA_SEEDS = (
    ("dump-vmstate/x86_64-pc.json", ("vmschkmachine", "rtl8139", "i8042", "hpet")),
    ("schema/vmstate-schema.json", ("timer", "virtio-rng@pci", "cpu_common", "PCIBUS")),
)


@cache
def schema_seeds() -> tuple[Seed, ...]:
    """Small schema files of both formats (``compat diff`` reads whole files: mutations go anywhere)."""
    import json

    out = []
    for name, keys in SCHEMA_SEEDS:
        data = json.loads((ROOT / "compat_fixtures" / name).read_text())
        if "sections" in data:
            data = {**data, "sections": {key: data["sections"][key] for key in keys}}
        else:
            data = {key: data[key] for key in keys}
        payload = json.dumps(data, indent=1).encode()
        lines = tuple(i + 1 for i, byte in enumerate(payload) if byte == 0x0A)
        out.append(Seed(Path(name).name, "schema", payload, (0, *lines), len(payload)))
    return tuple(out)


def all_seeds() -> dict[str, list[Seed]]:
    """Every seed by kind: ``qemu``, each snapshot codec, and compressed streams (``gzip``, ``xz``)."""
    seeds: dict[str, list[Seed]] = {"qemu": []}
    for name in QEMU_SEEDS:
        seeds["qemu"].append(qemu_seed(name))
        if has_vmdesc(name):
            seeds["qemu"].append(qemu_seed(name, vmdesc=False))
    for codec in CODECS:
        seeds[codec] = [snapshot_seed(codec), snapshot_seed(codec, "pc-2.2-virtio-all.mig"), devices_snapshot_seed(codec)]
    for method in COMPRESSORS:
        seeds[method] = [compressed_seed(name, vmdesc, method) for name, vmdesc in COMPRESSED_SEEDS]
    seeds["schema"] = list(schema_seeds())
    return seeds


# ---------------------------------------------------------------- mutations


@dataclass
class Mutant:
    """A mutated payload and how its length changed, for re-sealing."""

    payload: bytearray
    edits: list[tuple[int, int]] = field(default_factory=list)
    ops: list[str] = field(default_factory=list)


class Mutator:
    """Seeded random damage: bit flips, interesting values, length inflation, deletions, insertions, splices."""

    OPS = ("flip", "byte", "word", "inflate", "delete", "insert", "duplicate", "splice", "truncate", "digits", "field",
           "nest", "blockname", "vmdesc", "tail", "grow", "pages")
    WEIGHTS = (12, 12, 8, 12, 10, 7, 5, 5, 3, 5, 21, 2, 2, 6, 2, 3, 1)

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def mutate(self, seed: Seed, donors: Sequence[Seed] = ()) -> Mutant:
        """One to four mutations of ``seed`` (splices take from ``donors`` of the same kind)."""
        mutant = Mutant(bytearray(seed.payload))
        count = 1 if self.rng.random() < 0.5 else self.rng.randint(2, 4)
        # a structure-aware change goes first: it rewrites spans of the unmutated payload
        for op in sorted(self.rng.choices(self.OPS, self.WEIGHTS, k=count), key=lambda op: op != "field"):
            if not mutant.payload:
                break
            getattr(self, f"_{op}")(mutant, seed, donors)
            mutant.ops.append(op)
        return mutant

    def _position(self, seed: Seed, size: int) -> int:
        roll = self.rng.random()
        if roll < 0.5 and seed.boundaries:
            position = self.rng.choice(seed.boundaries) + int(min(self.rng.expovariate(1 / 6), 64.0))
        elif roll < 0.85 and seed.eof > 0:
            position = self.rng.randrange(seed.eof + 1)
        else:
            position = self.rng.randrange(size)
        return min(position, size - 1)

    def _flip(self, m: Mutant, seed: Seed, _donors: Sequence[Seed]) -> None:
        m.payload[self._position(seed, len(m.payload))] ^= 1 << self.rng.randrange(8)

    def _byte(self, m: Mutant, seed: Seed, _donors: Sequence[Seed]) -> None:
        m.payload[self._position(seed, len(m.payload))] = self.rng.choice(INTERESTING_BYTES)

    def _value(self, current: int, width: int, size: int, position: int) -> int:
        top = (1 << (8 * width)) - 1
        choices = (0, 1, top, top >> 1, (top >> 1) + 1, current + 1, current - 1, current ^ (1 << (8 * width - 1)),
                   size, size - position, current + self.rng.randint(1, 4096), self.rng.randrange(top + 1))
        return self.rng.choice(choices) & top

    def _word(self, m: Mutant, seed: Seed, _donors: Sequence[Seed]) -> None:
        width = self.rng.choice(_WIDTHS)
        at = min(self._position(seed, len(m.payload)), max(len(m.payload) - width, 0))
        order: Literal["big", "little"] = "big" if self.rng.random() < 0.85 else "little"
        current = int.from_bytes(m.payload[at : at + width], order)
        value = self._value(current, width, len(m.payload), at)
        m.payload[at : at + width] = value.to_bytes(width, order)[: len(m.payload) - at]

    def _inflate(self, m: Mutant, seed: Seed, _donors: Sequence[Seed]) -> None:
        """Grow what may be a length or count: a byte, be16, be32 or be64 a few bytes after a record start."""
        width = self.rng.choice(_WIDTHS)
        at = min(self._position(seed, len(m.payload)), max(len(m.payload) - width, 0))
        top = (1 << (8 * width)) - 1
        current = int.from_bytes(m.payload[at : at + width], "big")
        grown = self.rng.choice((current + 1, current + 2, current + 8, current * 2, current * 256, current + 4096,
                                 current + (1 << 16), current + (1 << 20), current + (1 << 24), 1 << 31, top))
        m.payload[at : at + width] = min(grown, top).to_bytes(width, "big")[: len(m.payload) - at]

    def _delete(self, m: Mutant, seed: Seed, _donors: Sequence[Seed]) -> None:
        at = self._position(seed, len(m.payload))
        if self.rng.random() < 0.3:
            following = [b for b in seed.boundaries if b > at]
            end = following[0] if following else len(m.payload)
        else:
            end = at + 1 + int(min(self.rng.expovariate(1 / 4), 256.0))
        end = min(end, len(m.payload))
        del m.payload[at:end]
        m.edits.append((at, at - end))

    def _insert(self, m: Mutant, seed: Seed, _donors: Sequence[Seed]) -> None:
        at = self._position(seed, len(m.payload))
        count = 1 + int(min(self.rng.expovariate(1 / 4), 64.0))
        if self.rng.random() < 0.5:
            blob = bytes(self.rng.choice(INTERESTING_BYTES) for _ in range(count))
        else:
            blob = self.rng.randbytes(count)
        m.payload[at:at] = blob
        m.edits.append((at, len(blob)))

    def _duplicate(self, m: Mutant, seed: Seed, _donors: Sequence[Seed]) -> None:
        """Copy one record (the bytes between two boundaries) to another boundary."""
        starts = [b for b in seed.boundaries if b < len(m.payload)]
        if len(starts) < 2:
            return
        i = self.rng.randrange(len(starts) - 1)
        chunk = bytes(m.payload[starts[i] : starts[i + 1]])[:8192]
        at = self.rng.choice(starts)
        m.payload[at:at] = chunk
        m.edits.append((at, len(chunk)))

    def _splice(self, m: Mutant, seed: Seed, donors: Sequence[Seed]) -> None:
        """Our bytes up to one record boundary, a donor's from one of its boundaries."""
        others = [d for d in donors if d.kind == seed.kind and d.payload != seed.payload]
        if not others:
            return
        donor = self.rng.choice(others)
        at = min(self.rng.choice(seed.boundaries), len(m.payload))
        start = self.rng.choice(donor.boundaries)
        tail = donor.payload[start:]
        m.edits.append((at, len(tail) - (len(m.payload) - at)))
        m.payload[at:] = tail

    def _truncate(self, m: Mutant, seed: Seed, _donors: Sequence[Seed]) -> None:
        at = self._position(seed, len(m.payload))
        m.edits.append((at, at - len(m.payload)))
        del m.payload[at:]

    def _digits(self, m: Mutant, seed: Seed, donors: Sequence[Seed]) -> None:
        """Replace a decimal number in JSON text (vmdesc, JSON Lines) by an extreme one."""
        start = self.rng.randrange(len(m.payload))
        at = next((i for i in range(start, min(start + 4096, len(m.payload))) if 0x30 <= m.payload[i] <= 0x39), -1)
        if at < 0:
            self._word(m, seed, donors)
            return
        end = at
        while end < len(m.payload) and 0x30 <= m.payload[end] <= 0x39:
            end += 1
        text = self.rng.choice((b"0", b"-1", b"4294967296", b"18446744073709551616", b"99999999999999999999999",
                                b"1.5", b"1e400", b"-0", b"65536", b"2147483648"))
        m.payload[at:end] = text
        m.edits.append((at, len(text) - (end - at)))

    # ------------------------------------------------------------ hostile classes (issue 12, section 3)

    def _vmdesc(self, m: Mutant, seed: Seed, donors: Sequence[Seed]) -> None:
        """Rewrite the vmdesc JSON: deep nesting, entries of the wrong type, lone surrogates, a great many values."""
        if seed.kind != "qemu" or m.ops or seed.eof < 0:  # needs the unmutated layout
            self._digits(m, seed, donors)
            return
        raw = bytes(m.payload[seed.eof + 6 :]) if len(m.payload) > seed.eof + 6 else b'{"devices": []}'
        roll = self.rng.choice(("deep", "types", "surrogate", "wide"))
        if roll == "deep":
            depth = self.rng.choice((DEFAULT_LIMITS.max_vmdesc_depth - 2, DEFAULT_LIMITS.max_vmdesc_depth + 1, 1000, 100_000))
            new = raw.replace(b'"devices": [', b'"devices": [' + b"[" * depth + b"]" * depth + b",", 1)
            new = new if new != raw else hostile.deep_json(depth)
        elif roll == "wide":
            count = self.rng.choice((1000, 100_000, DEFAULT_LIMITS.max_vmdesc_items + 1))
            new = hostile.wide_json(count)
        else:
            try:
                desc = json.loads(raw)
            except ValueError:
                desc = {"devices": []}
            devices = desc.get("devices") if isinstance(desc, dict) else None
            if not isinstance(devices, list) or not devices or not isinstance(devices[-1], dict):
                new = b'{"devices": {}}'
            elif roll == "types":
                entry = self.rng.choice([d for d in devices if isinstance(d, dict)])
                key = self.rng.choice(("instance_id", "name", "vmsd_name", "version", "fields", "subsections"))
                entry[key] = self.rng.choice(([], {}, "0", True, -1, 1 << 32, None, 1.5, 10**300))
                new = json.dumps(desc).encode()
            else:
                text = json.dumps(desc)
                spots = [i for i in range(len(text) - 3) if text.startswith(': "', i)]
                at = self.rng.choice(spots) + 3 if spots else 0
                new = (text[:at] + self.rng.choice(("\\ud800", "\\udfff", "\\udc80x")) + text[at:]).encode()
        m.payload[seed.eof + 1 :] = bytes((SectionType.VMDESCRIPTION,)) + len(new).to_bytes(4, "big") + new
        m.edits.append((seed.eof + 1, len(m.payload) - len(seed.payload)))

    def _tail(self, m: Mutant, seed: Seed, donors: Sequence[Seed]) -> None:
        """Data after the end: none of it NUL (so the trailer search finds no EOF byte), or zeros, or a copy."""
        if seed.kind != "qemu":
            self._insert(m, seed, donors)
            return
        size = self.rng.choice((1, 100, 70_000, (1 << 20) + 3, 3 << 20))
        roll = self.rng.random()
        if roll < 0.5:
            blob = self.rng.randbytes(size).replace(b"\x00", b"\x01")
        elif roll < 0.75:
            blob = bytes(size)
        else:
            blob = (bytes(m.payload) * (size // max(len(m.payload), 1) + 1))[:size]
        m.edits.append((len(m.payload), len(blob)))
        m.payload += blob

    def _grow(self, m: Mutant, seed: Seed, donors: Sequence[Seed]) -> None:
        """A long run inside one device section, so that nothing describes it and its end is scanned for."""
        if m.ops or not seed.units or seed.kind != "qemu":
            self._insert(m, seed, donors)
            return
        start, end, _ = self.rng.choice(seed.units)
        at = self.rng.randrange(start + 1, end) if end > start + 1 else start
        size = self.rng.choice((4096, 65_543, 1 << 20, 3 << 20))
        roll = self.rng.random()
        if roll < 0.4:
            blob = bytes(size)
        elif roll < 0.7:
            blob = self.rng.randbytes(size)
        else:  # dense look-alikes: START headers of a used id, PART/END bytes
            unit = self.rng.choice((b"\x01\x00\x00\x00\x00\x01A", b"\x02\x00\x00\x00\x00", b"\x03", b"\x7e\x00\x00\x00"))
            blob = (unit * (size // len(unit) + 1))[:size]
        m.payload[at:at] = blob
        m.edits.append((at, len(blob)))

    def _pages(self, m: Mutant, seed: Seed, donors: Sequence[Seed]) -> None:
        """A page size from the vmdesc that is large or odd; or a stream of large pages."""
        if seed.kind != "qemu":
            self._word(m, seed, donors)
            return
        size = self.rng.choice((1 << 16, 1 << 20, 1 << 21, 1023, 0, 3 << 12))
        if self.rng.random() < 0.5 and 1024 <= size <= DEFAULT_LIMITS.max_page_size and not size & (size - 1):
            new = hostile.big_page_stream(size, self.rng.choice((2, 5, 12)))
            m.edits.append((0, len(new) - len(m.payload)))
            m.payload[:] = new
            return
        text = bytes(m.payload)
        at = text.rfind(b'"page_size": ')
        if at < 0:
            self._word(m, seed, donors)
            return
        at += len(b'"page_size": ')
        end = at
        while end < len(text) and 0x30 <= text[end] <= 0x39:
            end += 1
        number = str(size).encode()
        m.payload[at:end] = number
        m.edits.append((at, len(number) - (end - at)))
        vmdesc = seed.eof + 6
        if len(m.payload) >= vmdesc:  # keep the be32 length right
            m.payload[seed.eof + 2 : vmdesc] = (len(m.payload) - vmdesc).to_bytes(4, "big")

    # ------------------------------------------------------------ structure-aware

    #: empty lists per ``nest`` item: enough that building them passes the fuzzer's memory budget (or its cap)
    _NEST = {"msgpack": 3 << 19, "cbor": 3 << 19, "json": 5 << 20}

    def _nest(self, m: Mutant, seed: Seed, donors: Sequence[Seed]) -> None:
        """Insert, at an item boundary, an item of lists of empty lists: bytes within limits, objects beyond."""
        if seed.kind not in self._NEST:
            self._inflate(m, seed, donors)
            return
        total = self._NEST[seed.kind]
        inner = self.rng.choice((1, 1000, 1 << 16, total))
        outer = max(total // inner, 1)
        if seed.kind == "msgpack":
            data = b"\xdd" + outer.to_bytes(4, "big") + (b"\xdd" + inner.to_bytes(4, "big") + b"\x90" * inner) * outer
        elif seed.kind == "cbor":
            data = b"\x9a" + outer.to_bytes(4, "big") + (b"\x9a" + inner.to_bytes(4, "big") + b"\x80" * inner) * outer
        else:
            data = b"[" + b",".join([b"[" + b",".join([b"[]"] * inner) + b"]"] * outer) + b"]\n"
        at = min(self.rng.choice(seed.boundaries), len(m.payload))
        m.payload[at:at] = data
        m.edits.append((at, len(data)))

    def _blockname(self, m: Mutant, seed: Seed, donors: Sequence[Seed]) -> None:
        """Rename the first RAM block of a stream to a long name of slashes (a valid stream, an awkward file name)."""
        if seed.kind != "qemu" or m.ops:
            self._inflate(m, seed, donors)
            return
        records = list(StreamReader(io.BytesIO(bytes(m.payload))))
        block = next((r.blocks[0].name for r in records if isinstance(r, RamBlockList) and r.blocks), None)
        if block is None:
            self._inflate(m, seed, donors)
            return
        name = self.rng.choice(("/a" * 127, "x" * 255, "/" * 255, "~" * 200, "%" * 255))

        def rename(record: StreamRecord) -> StreamRecord:
            if isinstance(record, RamBlockList):
                blocks = tuple(attrs.evolve(b, name=name) if b.name == block else b for b in record.blocks)
                return attrs.evolve(record, blocks=blocks)
            if isinstance(record, (RamPage, RamZero)) and record.block == block:
                return attrs.evolve(record, block=name)
            return record

        out = io.BytesIO()
        StreamWriter(out).write_all(rename(r) for r in records)
        m.edits.append((len(m.payload), len(out.getvalue()) - len(m.payload)))  # an approximation: one edit at the end
        m.payload[:] = out.getvalue()

    _JSON_WEIRD = ("[" * 100_000 + "]" * 100_000, "[" * 300 + "]" * 300, "9" * 5000, "1.5", "1e400", "NaN", "null",
                   "[]", "{}", '"\\ud800"', '"\\u001b[2J"', "true", "-1", str(1 << 64), "[null]", '{"a": null}', '""')

    def _json_node(self, m: Mutant) -> None:
        """Replace one value (or drop one key) of a JSON document; raw JSON text, so any depth or length fits."""
        import json

        try:
            data = json.loads(bytes(m.payload))
        except ValueError:
            return
        paths: list[tuple[Any, ...]] = []
        stack: list[tuple[tuple[Any, ...], Any]] = [((), data)]
        while stack:
            path, value = stack.pop()
            paths.append(path)
            if isinstance(value, dict):
                stack.extend(((*path, k), v) for k, v in value.items())
            elif isinstance(value, list):
                stack.extend(((*path, i), v) for i, v in enumerate(value))
        path = self.rng.choice(paths[1:] or paths)
        if not path:
            return
        parent = data
        for key in path[:-1]:
            parent = parent[key]
        marker = "\u0001MARK\u0001"
        if isinstance(parent, dict) and self.rng.random() < 0.1:
            del parent[path[-1]]
            text = json.dumps(data)
        else:
            parent[path[-1]] = marker
            text = json.dumps(data).replace(json.dumps(marker), self.rng.choice(self._JSON_WEIRD))
        m.edits.append((0, len(text.encode()) - len(m.payload)))
        m.payload[:] = text.encode()

    def _field(self, m: Mutant, seed: Seed, donors: Sequence[Seed]) -> None:
        """Re-encode one device section (or snapshot item) with one value changed: well-formed bytes, odd content."""
        if seed.kind == "schema" and not m.ops:
            self._json_node(m)
            return
        if m.ops or not seed.units:  # units are offsets into the unmutated payload
            self._inflate(m, seed, donors)
            return
        for _ in range(4):
            start, end, thing = self.rng.choice(seed.units)
            try:
                if seed.kind == "qemu":
                    encoded = encode_record(attrs.evolve(thing, record=self._record(thing.record)))
                else:
                    encoded = CODECS[seed.kind].encode(self._plain(thing))
            except (VMStateError, ValueError, TypeError, OverflowError):
                continue  # the description (or the codec) cannot carry that value: try another
            m.payload[start:end] = encoded
            m.edits.append((start, len(encoded) - (end - start)))
            return
        self._inflate(m, seed, donors)

    def _record(self, record: Record) -> Record:
        fields, subsections = dict(record.fields), dict(record.subsections)
        if subsections and (not fields or self.rng.random() < 0.3):
            name = self.rng.choice(list(subsections))
            if self.rng.random() < 0.4:
                del subsections[name]  # as if its ``needed`` said no
            else:
                subsections[name] = self._record(subsections[name])
        elif fields:
            name = self.rng.choice(list(fields))
            fields[name] = self._leaf(fields[name])
        return Record(record.version, fields, subsections)

    def _leaf(self, value: Any) -> Any:
        if isinstance(value, Record):
            return self._record(value)
        if isinstance(value, (list, tuple)) and value:
            items = list(value)
            i = self.rng.randrange(len(items))
            roll = self.rng.random()
            if roll < 0.15:
                del items[i]
            elif roll < 0.3:
                items.insert(i, items[i])
            else:
                items[i] = self._leaf(items[i])
            return type(value)(items)
        if isinstance(value, bool):
            return not value
        if isinstance(value, int):
            return self.rng.choice((0, 1, value + 1, value - 1, value * 2, value ^ (1 << self.rng.randrange(64)),
                                    0xFF, 0x100, 0xFFFF, 0xFFFFFFFF, (1 << 64) - 1, -1, 1 << 31))
        if isinstance(value, (bytes, bytearray, memoryview)):
            data = bytearray(value)
            roll = self.rng.random()
            if roll < 0.3 and data:
                data[self.rng.randrange(len(data))] ^= 1 << self.rng.randrange(8)
            elif roll < 0.5 and data:
                del data[-1]
            elif roll < 0.7:
                data.append(self.rng.choice(INTERESTING_BYTES))
            else:
                data = bytearray(self.rng.randbytes(len(data)))
            return bytes(data)
        return value

    _WEIRD: tuple[Any, ...] = (None, -1, 0, (1 << 64) - 1, 1 << 64, -(1 << 63), "x" * 300, "", "\u00e9", b"", b"\xff" * 9,
                               [], {}, True, [1, [2]], {"t": "eof"})

    def _plain(self, value: Any, depth: int = 0) -> Any:
        """An item with one value somewhere in it changed, dropped, or replaced by something of another type."""
        if isinstance(value, dict) and value and (depth == 0 or self.rng.random() < 0.7):
            out = dict(value)
            key = self.rng.choice(list(out))
            roll = self.rng.random()
            if roll < 0.12:
                del out[key]
            elif roll < 0.18:
                out["unexpected"] = self.rng.choice(self._WEIRD)
            else:
                out[key] = self._plain(out[key], depth + 1)
            return out
        if isinstance(value, list) and value and self.rng.random() < 0.8:
            return self._leaf([self._plain(v, depth + 1) if i == 0 else v for i, v in enumerate(value)]) \
                if self.rng.random() < 0.2 else [*value[:-1], self._plain(value[-1], depth + 1)]
        if self.rng.random() < 0.3:
            return self.rng.choice(self._WEIRD)
        return self._leaf(value)
