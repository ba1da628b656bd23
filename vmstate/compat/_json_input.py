"""Read a schema or dump file as untrusted JSON: bounded, and every oddity named by file and JSON path.

Before the shape is looked at (``sources``), the file is checked as JSON
that a schema can hold at all: UTF-8, at most ``MAX_SCHEMA_BYTES``, nesting
at most ``MAX_JSON_DEPTH`` deep, integers of at most ``MAX_INT_DIGITS``
digits (Python's int() of a 5,000-digit string is slow, and refused under
``sys.set_int_max_str_digits``), no floats, NaN or Infinity, and text with
neither lone surrogates nor control characters (names end up on a terminal).
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import SchemaFormatError

__all__ = ["MAX_INT_DIGITS", "MAX_JSON_DEPTH", "MAX_SCHEMA_BYTES", "json_path", "load_json", "text_of"]

#: the largest schema file read (QEMU 7.2's aarch64 dump is 1.9 MB)
MAX_SCHEMA_BYTES = 64 << 20
#: nesting of JSON lists and maps (a real schema nests about 40 deep)
MAX_JSON_DEPTH = 200
#: digits of one integer, sign included (a u64 has 20)
MAX_INT_DIGITS = 24

PathItem = str | int


class _Refused:
    """A number JSON can write but a schema never holds; kept so the walk can name where it was."""

    def __init__(self, text: str, why: str) -> None:
        self.text, self.why = text, why


def _int(text: str) -> int | _Refused:
    if len(text) > MAX_INT_DIGITS:
        return _Refused(text, f"an integer of {len(text)} digits (at most {MAX_INT_DIGITS})")
    return int(text)


def _float(text: str) -> _Refused:
    return _Refused(text, f"a number that is not an integer ({text[:30]})")


def text_of(value: str) -> str:
    """``value`` safe to print: itself if plain, else JSON-quoted with escapes."""
    if value and value.isprintable() and not any(c in value for c in '."[]'):
        return value
    return json.dumps(value)


#: a longer path shows its first and last steps only
_PATH_SHOWN = 12, 2


def _steps(path: tuple[PathItem, ...], first: bool) -> str:
    """The steps of ``path``; a key is preceded by a dot unless it starts the whole path."""
    out = ""
    for item in path:
        if isinstance(item, int):
            out += f"[{item}]"
        else:
            out += f".{text_of(item)}" if out or not first else text_of(item)
    return out


def json_path(path: tuple[PathItem, ...]) -> str:
    """``sections.virtio-net@pci.fields[0]``: keys joined by dots, list indices in brackets."""
    head, tail = _PATH_SHOWN
    if len(path) <= head + tail:
        return _steps(path, True) or "(top level)"
    return f"{_steps(path[:head], True)}...({len(path) - head - tail} more)...{_steps(path[-tail:], False)}"


def _bad_text(value: str) -> str | None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "text with a lone surrogate"
    if any(unicodedata.category(c) == "Cc" for c in value):
        return "text with a control character"
    return None


def _nodes(data: Any) -> Iterator[tuple[tuple[PathItem, ...], Any]]:
    """Every value with its path, depth first, without recursion."""
    stack: list[tuple[tuple[PathItem, ...], Any]] = [((), data)]
    while stack:
        path, value = stack.pop()
        yield path, value
        if isinstance(value, dict):
            stack.extend(((*path, key), item) for key, item in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend(((*path, index), item) for index, item in reversed(list(enumerate(value))))


def check_tree(data: Any, label: str) -> None:
    """Refuse what no schema holds, naming the first place it occurs."""
    for path, value in _nodes(data):
        problem = None
        if len(path) > MAX_JSON_DEPTH:
            problem = f"nests deeper than {MAX_JSON_DEPTH} levels"
        elif isinstance(value, _Refused):
            problem = value.why
        elif isinstance(value, str):
            problem = _bad_text(value)
        elif isinstance(value, dict):
            problem = next((f"key {json.dumps(key)}: {why}" for key in value if (why := _bad_text(key))), None)
        if problem is not None:
            raise SchemaFormatError(f"{label}: {json_path(path)}: {problem}")


def _hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise SchemaFormatError(f"duplicate key {text_of(key)}")
        out[key] = value
    return out


def parse_json(text: str | bytes, label: str) -> Any:
    """Parse and check JSON text; ``SchemaFormatError`` naming ``label`` and where."""
    try:
        data = json.loads(text, parse_int=_int, parse_float=_float, parse_constant=_float, object_pairs_hook=_hook)
    except SchemaFormatError as error:
        raise SchemaFormatError(f"{label}: {error}") from None
    except RecursionError:
        raise SchemaFormatError(f"{label}: nests too deep to parse (more than {MAX_JSON_DEPTH} levels are refused)") from None
    except (ValueError, UnicodeDecodeError) as error:  # JSONDecodeError is a ValueError
        raise SchemaFormatError(f"{label}: not JSON: {error}") from None
    check_tree(data, label)
    return data


def load_json(path: str | Path) -> Any:
    """Read one schema file, at most ``MAX_SCHEMA_BYTES``."""
    chunks: list[bytes] = []
    size = 0
    with open(path, "rb") as file:
        while size <= MAX_SCHEMA_BYTES and (chunk := file.read(1 << 20)):  # read(n) would allocate n bytes up front
            chunks.append(chunk)
            size += len(chunk)
    data = b"".join(chunks)
    if size > MAX_SCHEMA_BYTES:
        raise SchemaFormatError(f"{path}: larger than {MAX_SCHEMA_BYTES} bytes (MAX_SCHEMA_BYTES)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise SchemaFormatError(f"{path}: not UTF-8 text: byte {error.start} cannot be decoded") from None
    return parse_json(text, str(path))
