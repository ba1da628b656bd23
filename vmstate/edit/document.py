"""A stream's device state as one plain JSON document to read and edit (``vmstate export`` / ``vmstate import``).

Export writes every section our descriptions (or the vmdesc) decoded as a
JSON object, field by field, in wire order, with values a person reads and
``jq`` keeps exact:

* integers as numbers; past 2**53 (where jq's doubles lose digits) as
  ``"0x..."`` strings; named integers by name (``"device_endian": "big"``);
* MACs as ``"52:54:00:12:34:56"``, text buffers as their text, other bytes
  as hex strings;
* subsections as objects under their names (``"virtio/device_endian"``);
* a list ending in at least four all-zero items (unused queue slots) as
  ``{"(items)": [...], "(then all zero)": N}``;
* a section kept raw as ``{"(kept raw)": SIZE}``.

RAM stays out: import applies the document to a *base* stream (the one it
was exported from, named in the document, or ``--base``) and writes a new
stream or snapshot with the same RAM. Import checks every key against the
base's sections. An unknown section, field or subsection is an error naming
its path, and so is a missing one. Each changed value then goes through
``vmstate edit``'s rules (its kind, QEMU's save rules, the read-back), so
both routes refuse the same things.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

from streams.convert import write_records
from streams.formats import open_records
from streams.records import DeviceState, RawBody, StreamRecord
from streams.snapshots import atomic_write
from vmstate.description import Array, Buffer, Description, Int, Kind, Record
from vmstate.errors import EditError, PathItem
from vmstate.lookup import DescriptionLookup, LookupFunction
from vmstate.vmdesc import load_bounded_json

from .fields import MODEL_ALIASES, Assignment, _kind, edit_section
from .paths import FieldRef, show_path
from .stream import _Walk
from .values import format_mac, kind_at

__all__ = ["FORMAT", "export_file", "import_file"]

FORMAT = "vmstate-forge device state"
VERSION = 1
ITEMS, ZEROS, RAW = "(items)", "(then all zero)", "(kept raw)"
_FOLD_AT_LEAST = 4
_JQ_EXACT = 1 << 53
#: limits for a document read back: bytes, JSON values, nesting
_LIMITS = (("max_document", 256 << 20), ("max_document_items", 20_000_000), ("max_document_depth", 128))

PathLike = str | os.PathLike[str]
Steps = tuple[PathItem, ...]


def _section_name(idstr: str, instance_id: int) -> str:
    return idstr if instance_id == 0 else f"{idstr}#{instance_id}"


# ------------------------------------------------------------------ export


def _is_zero(value: Any) -> bool:
    if isinstance(value, Record):
        return all(_is_zero(v) for v in value.fields.values()) and not value.subsections
    if isinstance(value, list):
        return all(_is_zero(v) for v in value)
    if isinstance(value, (bytes, bytearray)):
        return not any(value)
    return value == 0


def _plain(value: Any, kind: Kind | Description | None, state: DeviceState, steps: Steps) -> Any:
    if isinstance(value, Record):
        return {name: _plain(v, _kind(state, (*steps, name)), state, (*steps, name))
                for name, v in [*value.fields.items(), *value.subsections.items()]}
    if isinstance(value, list):
        element = kind.element if isinstance(kind, Array) else None
        zeros = 0
        while zeros < len(value) and _is_zero(value[len(value) - 1 - zeros]):
            zeros += 1
        used = value[: len(value) - zeros] if zeros >= _FOLD_AT_LEAST else value
        items = [_plain(v, element if not isinstance(v, Record) else None, state, (*steps, i))
                 for i, v in enumerate(used)]
        return {ITEMS: items, ZEROS: zeros} if zeros >= _FOLD_AT_LEAST else items
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        names = dict(kind.names) if isinstance(kind, Int) else {}
        if value in names:
            return names[value]
        return value if -_JQ_EXACT < value < _JQ_EXACT else hex(value)
    if isinstance(value, (bytes, bytearray)):
        data = bytes(value)
        if isinstance(kind, Buffer) and kind.type_name == "mac" and len(data) == 6:
            return format_mac(data)
        if isinstance(kind, Buffer) and kind.text and b"\0" not in data.rstrip(b"\0"):
            return data.rstrip(b"\0").decode("latin-1")
        return data.hex()
    return value


def _sections(records: Iterator[StreamRecord], walk: _Walk) -> Iterator[tuple[str, Any]]:
    for record in records:
        walk.note(record)
        if isinstance(record, DeviceState) and isinstance(record.record, Record):
            yield _section_name(record.idstr, record.instance_id), _plain(record.record, record.description, record, ())
        elif isinstance(record, RawBody):
            key = walk.raw_key()
            if key is not None:
                yield _section_name(*key), {RAW: len(record.data)}


def export_file(source: PathLike, out: PathLike, *,
                descriptions: DescriptionLookup | LookupFunction | None = None) -> int:
    """Write ``source``'s device state to ``out`` as one JSON document; returns the number of sections."""
    walk = _Walk()
    with open_records(source, descriptions=descriptions, fallback="qemu") as opened:
        sections = dict(_sections(opened.records, walk))
    document = {"format": FORMAT, "version": VERSION, "source": os.fspath(source), "sections": sections}
    with atomic_write(out) as sink:
        sink.write(json.dumps(document, indent=1, ensure_ascii=False).encode("utf-8") + b"\n")
    return len(sections)


# ------------------------------------------------------------------ import


def read_document(path: PathLike) -> dict[str, Any]:
    """A document written by ``export_file``, checked for its shape (sizes bounded before parsing)."""
    with open(path, "rb") as file:
        raw = file.read(_LIMITS[0][1] + 1)
    document = load_bounded_json(raw, what=f"{os.fspath(path)}", limits=_LIMITS)
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise EditError(f"{os.fspath(path)}: not a device state document (vmstate export writes them)")
    if document.get("version") != VERSION:
        raise EditError(f"{os.fspath(path)}: document version {document.get('version')!r}, this reads {VERSION}")
    if not isinstance(document.get("sections"), dict):
        raise EditError(f"{os.fspath(path)}: 'sections' is not an object")
    return document


def _text(value: Any, kind: Kind | Description | None, where: str) -> str:
    """A document value as the text ``vmstate edit --set`` reads."""
    if isinstance(value, bool) or isinstance(value, int):
        return str(int(value))
    if isinstance(value, str):
        return json.dumps(value) if isinstance(kind, Buffer) and kind.text else value
    if isinstance(value, list) and all(isinstance(v, (int, str)) and not isinstance(v, bool) for v in value):
        return json.dumps(value)
    raise EditError(f"{where}: a {type(value).__name__} cannot stand for this field")


def _changes(state: DeviceState, node: Any, plain: Any, steps: Steps, out: list[Assignment]) -> None:
    """Assignments for every value in ``plain`` that differs from ``node`` (the base's), checking every key."""
    where = f"{_section_name(state.idstr, state.instance_id)}:{show_path(steps)}" if steps else \
        _section_name(state.idstr, state.instance_id)
    if isinstance(node, Record):
        if not isinstance(plain, dict):
            raise EditError(f"{where}: expected an object of fields")
        names = [*node.fields, *node.subsections]
        # a virtio subsection that stands for the model (device_endian) may be added: it sets the model
        added = {alias: plain[alias[-2]] for alias in MODEL_ALIASES
                 if alias[:-2] == steps and alias[-2] in plain and alias[-2] not in names}
        unknown = [k for k in plain if k not in names and k not in {a[-2] for a in added}]
        missing = [k for k in names if k not in plain]
        if unknown:
            raise EditError(f"{where}: unknown key {unknown[0]!r} (it has: {', '.join(names[:12])})")
        if missing:
            fields = [a[-1] for a in MODEL_ALIASES if a[:-1] == (*steps, missing[0])]
            hint = f" (to drop it, set its {fields[0]} to the default)" if fields else ""
            raise EditError(f"{where}: missing key {missing[0]!r}{hint}")
        for alias, sub in added.items():
            if not isinstance(sub, dict) or set(sub) != {alias[-1]}:
                raise EditError(f"{where}: {alias[-2]!r} holds one key, {alias[-1]!r}")
            model = MODEL_ALIASES[alias]
            out.append(Assignment(FieldRef(state.idstr, state.instance_id, model, where),
                                  _text(sub[alias[-1]], None, where)))
        for name in names:
            _changes(state, node.fields[name] if name in node.fields else node.subsections[name], plain[name],
                     (*steps, name), out)
        return
    kind = _kind(state, steps) if steps else None
    if isinstance(node, list) and (isinstance(plain, dict) or any(isinstance(v, Record) for v in node)):
        items = plain
        if isinstance(plain, dict):
            if set(plain) != {ITEMS, ZEROS} or not isinstance(plain[ITEMS], list) or not isinstance(plain[ZEROS], int):
                raise EditError(f"{where}: a folded list is {{{ITEMS!r}: [...], {ZEROS!r}: N}}")
            items = plain[ITEMS]
            if len(items) + plain[ZEROS] != len(node):
                raise EditError(f"{where}: {len(items)} items and {plain[ZEROS]} zero ones, the list has {len(node)}")
        if not isinstance(items, list) or len(items) > len(node):
            raise EditError(f"{where}: expected a list of {len(node)} items")
        if len(items) < len(node) and not isinstance(plain, dict):
            raise EditError(f"{where}: {len(items)} items, the list has {len(node)}")
        for i, item in enumerate(items):
            _changes(state, node[i], item, (*steps, i), out)
        for i in range(len(items), len(node)):
            if not _is_zero(node[i]):
                _zero(state, node[i], (*steps, i), out)
        return
    if isinstance(node, list) and isinstance(plain, dict):
        raise EditError(f"{where}: expected a list")
    text = _text(plain, kind, where)
    current = _plain(node, kind, state, steps)
    if plain != current:
        out.append(Assignment(FieldRef(state.idstr, state.instance_id, steps, where), text))


def _zero(state: DeviceState, node: Any, steps: Steps, out: list[Assignment]) -> None:
    """Assignments that make every leaf of ``node`` zero (an item the document folded into its zero run)."""
    if isinstance(node, Record):
        for name, value in [*node.fields.items(), *node.subsections.items()]:
            _zero(state, value, (*steps, name), out)
    elif isinstance(node, list):
        if node and not isinstance(node[0], (Record, list)):
            out.append(Assignment(FieldRef(state.idstr, state.instance_id, steps, show_path(steps)),
                                  json.dumps([0] * len(node))))
        else:
            for i, value in enumerate(node):
                _zero(state, value, (*steps, i), out)
    elif not _is_zero(node):
        zero = "00" * len(node) if isinstance(node, (bytes, bytearray)) else "0"
        out.append(Assignment(FieldRef(state.idstr, state.instance_id, steps, show_path(steps)), zero))


def _imported(records: Iterator[StreamRecord], sections: dict[str, Any], walk: _Walk,
              counts: list[int]) -> Iterator[StreamRecord]:
    seen: set[str] = set()
    for record in records:
        walk.note(record)
        if isinstance(record, DeviceState) and isinstance(record.record, Record):
            name = _section_name(record.idstr, record.instance_id)
            if name not in sections:
                raise EditError(f"missing section {name!r}: the document lists every section of the base stream")
            seen.add(name)
            changes: list[Assignment] = []
            _changes(record, record.record, sections[name], (), changes)
            if changes:
                record = edit_section(record, changes, walk.target)
                counts[0] += 1
        elif isinstance(record, RawBody) and walk.raw_key() is not None:
            key = walk.raw_key()
            assert key is not None
            name = _section_name(*key)
            if sections.get(name) != {RAW: len(record.data)}:
                raise EditError(f"{name}: kept raw in the base stream; the document must leave it as "
                                f"{{{RAW!r}: {len(record.data)}}}")
            seen.add(name)
        yield record
    extra = [name for name in sections if name not in seen]
    if extra:
        raise EditError(f"unknown section {extra[0]!r}: the base stream has none of that name")


def import_file(document_path: PathLike, out: PathLike, *, base: PathLike | None = None, to: str | None = None,
                descriptions: DescriptionLookup | LookupFunction | None = None) -> int:
    """Apply a document to its base stream and write ``out``; returns the number of sections changed."""
    document = read_document(document_path)
    source = base if base is not None else document.get("source")
    if not isinstance(source, (str, os.PathLike)):
        raise EditError(f"{os.fspath(document_path)}: names no base stream; give --base")
    counts = [0]
    with open_records(source, descriptions=descriptions, fallback="qemu") as opened:
        records = _imported(opened.records, document["sections"], _Walk(), counts)
        write_records(opened, records, out, to or opened.kind)
    return counts[0]
