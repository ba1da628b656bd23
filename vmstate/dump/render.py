"""Render ``vmstate dump``'s model: text lines, or JSON a piece at a time.

Both are pure: they take the model (``run.read_dump``) and yield strings.
The text is folded for a person (``fold``): runs of all-zero or identical
list items as one line (``vq[3..1023]: 1021 all zero (v1)``), long byte
strings as their length and a head, RAM blocks one line each, no value past
its first 97 characters.  ``full=True`` shows every item and every byte
(a ``vmstate.spill.Blob`` and a raw body as lines of hex, a chunk at a
time).  Long byte
strings are hexed a chunk at a time, so the JSON of a 200 MB body never
exists whole.
"""

from __future__ import annotations

import json
from typing import Any, Iterator

from streams.records import Command
from vmstate.description import Buffer
from vmstate.display import DisplayTable, path_step, shown
from vmstate.lookup import RAW_SOURCE
from vmstate.spill import Blob, chunks
from vmstate.text import printable

from .fold import bytes_text, item_runs, scalars_text

__all__ = ["render_text", "render_json", "FULL_HEX_LINE"]

#: a value's text is cut to this many characters (and "...")
_WIDTH = 100
#: with ``full``, a long byte string (a ``Blob``) shows as lines of this many bytes' hex
FULL_HEX_LINE = 64


def render_text(model: dict[str, Any], kinds: DisplayTable, full: bool = False) -> Iterator[str]:
    """The text form, line by line, with what came from the input escaped; ``kinds`` says how to show named values.

    Folded unless ``full``: ``full`` shows every list item and every byte whole.
    """
    for line in _Text(kinds, full).summary(model):
        yield printable(line)


class _Text:
    def __init__(self, kinds: DisplayTable, full: bool) -> None:
        self.kinds, self.full = kinds, full

    def summary(self, summary: dict[str, Any]) -> Iterator[str]:
        yield (f"QEMU stream, file version {summary.get('file_version')}, "
               f"machine {summary.get('machine', '(no configuration section)')}")
        yield f"footers: {'yes' if summary['footers'] else 'no'}, vmdesc: {'yes' if summary['vmdesc'] else 'no'}"
        for block in summary["ram"]:
            yield from self._block(block)
        if summary.get("multifd_flushes"):
            yield f"ram: {summary['multifd_flushes']} MULTIFD_FLUSH records"
        for command in summary.get("commands", ()):
            yield f"command {_command_text(command['command'], command['data'])}"
        for section in summary["sections"]:
            yield (
                f"[{section['section_id']}] {section['idstr']} instance {section['instance_id']} v{section['version']}"
                f" ({section.get('source')}, {section.get('size')} bytes)"
            )
            if section.get("source") == RAW_SOURCE:
                yield f"  raw: {section['size']} bytes ({section['reason']})"
                if self.full:
                    yield from _hex_lines(section["raw"], "    ")
            else:
                yield from self._fields(section, "  ", section.get("vmsd_name"))

    def _block(self, block: dict[str, Any]) -> Iterator[str]:
        line = f"ram {block['name']}: {block['length']:#x} bytes, {block['pages']} pages, {block['zero_pages']} zero pages"
        if "mapped_ram" in block:
            mapped = block["mapped_ram"]
            line += f", mapped-ram bitmap at {mapped['bitmap_offset']:#x}, pages at {mapped['pages_offset']:#x}"
        digest = None
        if block.get("content_digest"):
            digest = f"{block['content_digest_algorithm']} {block['content_digest']}"
        elif block.get("content_digest_unavailable"):
            digest = f"{block['content_digest_algorithm']} unavailable: {block['content_digest_unavailable']}"
        if self.full:
            yield line
            if digest:
                yield f"  {digest}"
        else:
            yield f"{line}, {digest}" if digest else line

    def _fields(self, record: dict[str, Any], indent: str, owner: str | None) -> Iterator[str]:
        """A record's fields; ``owner`` (its description's name) finds how to show them."""
        for name, value in record["fields"].items():
            yield from self._value(path_step(name), value, indent, self.kinds.get((owner, name)) if owner else None)
        for name, sub in record.get("subsections", {}).items():
            yield f"{indent}subsection {name} (v{sub['version']})"
            yield from self._fields(sub, indent + "  ", name)

    def _value(self, name: str, value: Any, indent: str, kind: Any) -> Iterator[str]:
        if isinstance(value, dict) and "fields" in value:
            yield f"{indent}{name}: (v{value['version']})"
            yield from self._fields(value, indent + "  ", None)
        elif isinstance(value, list) and value and (isinstance(value[0], dict) or self.full and _has_blob(value)):
            yield from self._items(name, value, indent)
        elif self.full and isinstance(value, Blob):
            yield f"{indent}{name}: {len(value)} bytes:"
            yield from _hex_lines(value, indent + "  ")
        elif self.full:
            yield f"{indent}{name}: {shown(value, kind) or json.dumps(_hexed(value))}"
        else:
            text = self._leaf(value, kind)
            yield f"{indent}{name}: {text if len(text) <= _WIDTH else text[: _WIDTH - 3] + '...'}"

    def _items(self, name: str, items: list[Any], indent: str) -> Iterator[str]:
        if self.full:
            for i, item in enumerate(items):
                yield from self._value(f"{name}[{i}]", item, indent, None)
            return
        for fold, start, end in item_runs(items):
            if fold == "one":
                yield from self._value(f"{name}[{start}]", items[start], indent, None)
                continue
            span = f"{indent}{name}[{start}..{end - 1}]: {end - start}"
            if fold == "zero":
                version = items[start].get("version") if isinstance(items[start], dict) else None
                yield f"{span} all zero" + (f" (v{version})" if version is not None else "")
            else:
                yield f"{span} the same as {name}[{start - 1}]"

    def _leaf(self, value: Any, kind: Any) -> str:
        if isinstance(value, Blob) and isinstance(kind, Buffer) and kind.text:
            value = _text_head(value)
        named = shown(value, kind)
        if named is not None:
            return named
        if isinstance(value, (bytes, bytearray, Blob)):
            return bytes_text(value)
        if isinstance(value, list):
            return scalars_text(value, lambda item: self._leaf(item, None))
        return json.dumps(value)


def _hex_lines(value: bytes | Blob, indent: str) -> Iterator[str]:
    """A byte string as lines of ``FULL_HEX_LINE`` bytes' hex, read a chunk at a time."""
    for chunk in chunks(value):  # CHUNK is a multiple of the line's length
        for start in range(0, len(chunk), FULL_HEX_LINE):
            yield f"{indent}{chunk[start:start + FULL_HEX_LINE].hex()}"


def _has_blob(values: list[Any]) -> bool:
    return any(isinstance(v, Blob) for v in values)


def _text_head(blob: Blob) -> Blob | bytes:
    """As much of a long text buffer as a line shows, or the blob itself if a NUL inside keeps it hex."""
    nul_before = False
    for chunk in blob.chunks():
        text = chunk.rstrip(b"\0")
        if text and (nul_before or b"\0" in text):
            return blob  # shown() shows a text with an inner NUL as hex
        nul_before = nul_before or len(text) < len(chunk)
    return blob.head(_WIDTH).rstrip(b"\0")  # only trailing NULs: the text's first characters


def _hexed(value: Any) -> Any:
    """Bytes as hex, as the JSON form has them (no ``Blob`` reaches here: those show as lines)."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list):
        return [_hexed(item) for item in value]
    return value


def render_json(model: dict[str, Any]) -> Iterator[str]:
    """The JSON form in pieces: together exactly ``json.dumps(model, indent=2)`` of the model with its bytes as hex."""
    return _json(model, "\n")


def _json(value: Any, newline: str) -> Iterator[str]:
    # json.dumps(indent=2)'s layout: "{" / "[", each item on its own line one
    # level deeper, "," after all but the last, the closer back at this level.
    if isinstance(value, dict):
        if not value:
            yield "{}"
            return
        inner = newline + "  "
        yield "{"
        for i, (key, item) in enumerate(value.items()):
            yield f"{',' if i else ''}{inner}{_key(key)}: "
            yield from _json(item, inner)
        yield newline + "}"
    elif isinstance(value, (list, tuple)):
        if not value:
            yield "[]"
            return
        inner = newline + "  "
        yield "["
        for i, item in enumerate(value):
            yield f"{',' if i else ''}{inner}"
            yield from _json(item, inner)
        yield newline + "]"
    elif isinstance(value, (bytes, bytearray, memoryview, Blob)):
        yield '"'
        for chunk in chunks(value if isinstance(value, Blob) else bytes(value)):
            yield chunk.hex()
        yield '"'
    else:
        yield json.dumps(value)


def _key(key: Any) -> str:
    """A map key as json.dumps writes it: text as it is, a number or constant as its JSON text, quoted."""
    return json.dumps(key if isinstance(key, str) else json.dumps(key))


def _command_text(number: int, data: Any) -> str:
    """A QEMU_VM_COMMAND by QEMU's name (``SWITCHOVER_START``), with its arguments where they have a shape."""
    payload = bytes.fromhex(data) if isinstance(data, str) else bytes(data)
    command = Command(number, payload)
    arguments = ", ".join(f"{k} {v:#x}" if "size" in k else f"{k} {v}" for k, v in command.arguments().items())
    return f"{command.name} ({arguments})" if arguments else command.name
