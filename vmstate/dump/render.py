"""Render ``vmstate dump``'s model: text lines, or JSON a piece at a time.

Both are pure: they take the model (``run.read_dump``) and yield strings.
Long byte strings (``vmstate.spill.Blob``) are hexed a chunk at a time, so
the JSON of a 200 MB body never exists whole; the text shows no more of a
value than its first 97 characters.
"""

from __future__ import annotations

import json
from typing import Any, Iterator

from vmstate.description import Buffer
from vmstate.display import DisplayTable, path_step, shown
from vmstate.lookup import RAW_SOURCE
from vmstate.spill import Blob, chunks
from vmstate.text import printable

__all__ = ["render_text", "render_json"]

#: a value's text is cut to this many characters (and "...")
_WIDTH = 100


def render_text(model: dict[str, Any], kinds: DisplayTable) -> Iterator[str]:
    """The text form, line by line, with what came from the input escaped; ``kinds`` says how to show named values."""
    for line in _summary(model, kinds):
        yield printable(line)


def _summary(summary: dict[str, Any], kinds: DisplayTable) -> Iterator[str]:
    yield f"QEMU stream, file version {summary.get('file_version')}, machine {summary.get('machine', '(no configuration section)')}"
    yield f"footers: {'yes' if summary['footers'] else 'no'}, vmdesc: {'yes' if summary['vmdesc'] else 'no'}"
    for block in summary["ram"]:
        yield f"ram {block['name']}: {block['length']:#x} bytes, {block['pages']} pages, {block['zero_pages']} zero pages"
        if block.get("content_digest"):
            yield f"  {block['content_digest_algorithm']} {block['content_digest']}"
        elif block.get("content_digest_unavailable"):
            yield f"  {block['content_digest_algorithm']} unavailable: {block['content_digest_unavailable']}"
    for section in summary["sections"]:
        yield (
            f"[{section['section_id']}] {section['idstr']} instance {section['instance_id']} v{section['version']}"
            f" ({section.get('source')}, {section.get('size')} bytes)"
        )
        if section.get("source") == RAW_SOURCE:
            yield f"  raw: {section['size']} bytes ({section['reason']})"
        else:
            yield from _fields(section, "  ", section.get("vmsd_name"), kinds)


def _fields(record: dict[str, Any], indent: str, owner: str | None, kinds: DisplayTable) -> Iterator[str]:
    """A record's fields; ``owner`` (its description's name) finds how to show them."""
    for name, value in record["fields"].items():
        yield from _value(path_step(name), value, indent, kinds.get((owner, name)) if owner else None, kinds)
    for name, sub in record.get("subsections", {}).items():
        yield f"{indent}subsection {name} (v{sub['version']})"
        yield from _fields(sub, indent + "  ", name, kinds)


def _value(name: str, value: Any, indent: str, kind: Any, kinds: DisplayTable) -> Iterator[str]:
    if isinstance(value, dict) and "fields" in value:
        yield f"{indent}{name}: (v{value['version']})"
        yield from _fields(value, indent + "  ", None, kinds)
    elif isinstance(value, list) and value and isinstance(value[0], dict):
        for i, item in enumerate(value):
            yield from _value(f"{name}[{i}]", item, indent, None, kinds)
    else:
        text = _leaf(value, kind)
        yield f"{indent}{name}: {text if len(text) <= _WIDTH else text[: _WIDTH - 3] + '...'}"


def _leaf(value: Any, kind: Any) -> str:
    if isinstance(value, Blob) and isinstance(kind, Buffer) and kind.text:
        value = _text_head(value)
    return shown(value, kind) or json.dumps(_hexed(value))


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
    """Bytes as hex, as the JSON form has them; of a ``Blob`` only a line's worth (no more shows)."""
    if isinstance(value, Blob):
        return value.head(_WIDTH).hex()
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
