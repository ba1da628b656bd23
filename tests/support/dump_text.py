"""Read ``vmstate dump``'s text back into a tree, to check it against the JSON form.

The text is parsed on its own terms (indentation, ``name: value`` lines), not
by re-running the renderer: a line the renderer lost or miscounted shows up
as a difference from ``dump --json``.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["parse_dump", "check_dump", "check_record", "Node", "Items"]

_SECTION = re.compile(r"^\[(\d+)\] (.*) instance (\d+) v(\d+) \((.*), (\d+) bytes\)$")
_DIGEST = r"(xxh3-128|sha256) (.*)"
_RAM = re.compile(r"^ram (.*): (0x[0-9a-f]+) bytes, (\d+) pages, (\d+) zero pages(?:, " + _DIGEST + ")?$")
_DIGEST_LINE = re.compile("^" + _DIGEST + "$")
_SUBSECTION = re.compile(r"^subsection (.*) \(v(\d+)\)$")
_ITEM = re.compile(r"^(.*)\[(\d+)\]$")
_FOLD = re.compile(r"^(.*)\[(\d+)\.\.(\d+)\]: (\d+) (all zero(?: \(v(\d+)\))?|the same as (.*)\[(\d+)\])$")


class Node(dict[str, Any]):
    """A record: ``version``, ``fields`` (name -> leaf text, ``Node`` or ``Items``), ``subsections``."""


class Items(dict[str, Any]):
    """A list of records: ``items`` (index -> value) and ``folds`` ([(first, last, count, kind, version or ref)])."""


def _node(version: int | None) -> Node:
    return Node(version=version, fields={}, subsections={})


def _field_name(text: str) -> str:
    """A path step back to the field name (``path_step`` quotes names with ``.[]"``)."""
    if text.startswith('"') and text.endswith('"'):
        return text[1:-1].replace('\\"', '"')
    return text


def _split(text: str) -> tuple[str, str]:
    """``name: value``: the name ends at the first ``: `` outside quotes."""
    quoted = False
    for i, char in enumerate(text):
        if char == '"' and (i == 0 or text[i - 1] != "\\"):
            quoted = not quoted
        elif not quoted and text.startswith(": ", i):
            return text[:i], text[i + 2:]
    raise AssertionError(f"not a name: value line: {text!r}")


def parse_dump(lines: list[str]) -> dict[str, Any]:
    """``{"ram": [...], "sections": [...]}`` from the text lines (folded or ``--full``)."""
    out: dict[str, Any] = {"ram": [], "sections": []}
    stack: list[tuple[int, Node]] = []
    pending_hex: tuple[dict[str, Any], str, int] | None = None  # (where, key, indent) of a value shown as hex lines
    last_ram: dict[str, Any] | None = None
    for line in lines[2:]:
        indent = (len(line) - len(line.lstrip(" "))) // 2
        text = line.strip()
        if pending_hex is not None:
            where, key, at = pending_hex
            if indent > at:
                where[key] = ("hex", where[key][1] + text)
                continue
            pending_hex = None
        if indent == 0 and (ram := _RAM.match(line)):
            last_ram = {"name": ram[1], "length": int(ram[2], 16), "pages": int(ram[3]), "zero_pages": int(ram[4]),
                        "algorithm": ram[5], "digest": ram[6]}
            out["ram"].append(last_ram)
            continue
        if indent == 1 and last_ram is not None and not stack and (digest := _DIGEST_LINE.match(text)):
            last_ram["algorithm"], last_ram["digest"] = digest[1], digest[2]
            continue
        if indent == 0:
            section = _SECTION.match(line)
            assert section, line
            node = _node(int(section[4]))
            node.update(section_id=int(section[1]), idstr=section[2], source=section[5], size=int(section[6]))
            out["sections"].append(node)
            stack = [(0, node)]
            continue
        while stack and stack[-1][0] >= indent:
            stack.pop()
        parent = stack[-1][1]
        if text.startswith("raw: ") and indent == 1:
            parent["raw"] = ("hex", "")
            pending_hex = (parent, "raw", indent)
            continue
        if sub := _SUBSECTION.match(text):
            child = _node(int(sub[2]))
            parent["subsections"][sub[1]] = child
            stack.append((indent, child))
            continue
        if fold := _FOLD.match(text):
            items = parent["fields"].setdefault(_field_name(fold[1]), Items(items={}, folds=[]))
            kind = "zero" if fold[5].startswith("all zero") else "same"
            extra = (int(fold[6]) if fold[6] else None) if kind == "zero" else int(fold[8])
            items["folds"].append((int(fold[2]), int(fold[3]), int(fold[4]), kind, extra))
            continue
        name, value = _split(text)
        item = _ITEM.match(name)
        if item and not (name.startswith('"') and name.endswith('"')):
            holder = parent["fields"].setdefault(_field_name(item[1]), Items(items={}, folds=[]))["items"]
            key: Any = int(item[2])
        else:
            holder, key = parent["fields"], _field_name(name)
        if re.fullmatch(r"\(v(\d+)\)", value):
            child = _node(int(value[2:-1]))
            holder[key] = child
            stack.append((indent, child))
        elif re.fullmatch(r"\d+ bytes:", value):
            holder[key] = ("hex", "")
            pending_hex = (holder, key, indent)
        else:
            holder[key] = value
    return out


def _zero_json(value: Any) -> bool:
    """All zero in the JSON form (bytes are hex strings there)."""
    if isinstance(value, dict):
        return all(_zero_json(v) for v in value.get("fields", {}).values()) and all(
            _zero_json(v) for v in value.get("subsections", {}).values())
    if isinstance(value, list):
        return all(_zero_json(v) for v in value)
    if isinstance(value, str):
        return set(value) <= {"0"}
    return not value


def _leaf_full(text: str, value: Any) -> bool:
    import json

    if text == json.dumps(value):
        return True
    if isinstance(value, int) and not isinstance(value, bool) and text.endswith(f" ({value})"):
        return True  # a named value: little (1)
    if isinstance(value, str) and text.startswith('"') and text.endswith('"'):
        return bytes.fromhex(value).rstrip(b"\0").decode("latin-1") == text[1:-1]  # a text buffer
    return False


def _leaf_folded(text: str, value: Any) -> bool:
    if _leaf_full(text, value) or text.endswith("..."):
        return _leaf_full(text, value) or _prefix_agrees(text, value)
    if isinstance(value, str):
        if text == f'"{value}"':
            return True
        if m := re.fullmatch(r"(\d+) bytes, all ([0-9a-f]{2})", text):
            return int(m[1]) * 2 == len(value) and value == m[2] * int(m[1])
        if m := re.fullmatch(r"(\d+) bytes: ([0-9a-f]+)", text):
            return int(m[1]) * 2 == len(value) and value == m[2]
    if isinstance(value, list) and text.startswith("["):
        expanded: list[str] = []
        for part in text[1:-1].split(", "):
            m = re.fullmatch(r"(.*) \((\d+) times\)", part)
            expanded.extend([m[1]] * int(m[2]) if m else [part])
        return len(expanded) == len(value) and all(_leaf_folded(t, v) for t, v in zip(expanded, value))
    return False


def _prefix_agrees(text: str, value: Any) -> bool:
    """A line cut at its width ("..."): what shows agrees with the value's start."""
    head = text[:-3]
    if isinstance(value, str) and (m := re.fullmatch(r"(\d+) bytes: ([0-9a-f]+)", head)):
        return int(m[1]) * 2 == len(value) and value.startswith(m[2])
    return True  # a long list or text cut at 97 characters: the fold counts are what is checked


def check_record(json_value: Any, parsed: Any, full: bool, path: str = "") -> None:
    """Assert that the parsed text carries ``json_value`` (a record from ``dump --json``)."""
    assert isinstance(parsed, Node), path
    assert parsed["version"] == json_value["version"], path
    assert list(parsed["fields"]) == list(json_value["fields"]), path
    for name, value in json_value["fields"].items():
        _check(value, parsed["fields"][name], full, f"{path}.{name}")
    subsections = json_value.get("subsections", {})
    assert list(parsed["subsections"]) == list(subsections), path
    for name, sub in subsections.items():
        check_record(sub, parsed["subsections"][name], full, f"{path}/{name}")


def _check(value: Any, parsed: Any, full: bool, path: str) -> None:
    if isinstance(value, dict) and "fields" in value:
        check_record(value, parsed, full, path)
    elif isinstance(value, list) and value and isinstance(value[0], dict):
        assert isinstance(parsed, Items), path
        covered = sorted([*parsed["items"], *(i for first, last, *_ in parsed["folds"] for i in range(first, last + 1))])
        assert covered == list(range(len(value))), f"{path}: the items and folds cover {covered}"
        if full:
            assert parsed["folds"] == [], path
        for first, last, count, kind, extra in parsed["folds"]:
            assert count == last - first + 1, path
            run = value[first:last + 1]
            if kind == "zero":
                assert all(_zero_json(item) for item in run), f"{path}[{first}..{last}] is not all zero"
                assert extra is None or all(item.get("version") == extra for item in run), path
            else:
                assert extra == first - 1 and all(item == value[extra] for item in run), f"{path}[{first}..{last}]"
        for index, item in parsed["items"].items():
            _check(value[index], item, full, f"{path}[{index}]")
    elif isinstance(parsed, tuple):
        assert parsed == ("hex", value), path
    else:
        assert isinstance(parsed, str), path
        assert (_leaf_full if full else _leaf_folded)(parsed, value), f"{path}: {parsed!r} does not show {value!r}"


def check_dump(as_json: dict[str, Any], lines: list[str], full: bool) -> None:
    """Assert that text ``lines`` carry every RAM block and section value of ``as_json`` (``dump --json``)."""
    parsed = parse_dump(lines)
    assert len(parsed["ram"]) == len(as_json["ram"])
    for block, shown in zip(as_json["ram"], parsed["ram"]):
        assert {k: shown[k] for k in ("name", "length", "pages", "zero_pages")} == {
            k: block[k] for k in ("name", "length", "pages", "zero_pages")}
        digest = block.get("content_digest") or (
            f"unavailable: {block['content_digest_unavailable']}" if block.get("content_digest_unavailable") else None)
        assert shown["digest"] == digest, block["name"]
        assert shown["algorithm"] == (block["content_digest_algorithm"] if digest else None), block["name"]
    assert len(parsed["sections"]) == len(as_json["sections"])
    for section, shown in zip(as_json["sections"], parsed["sections"]):
        where = section["idstr"]
        assert (shown["section_id"], shown["idstr"], shown["source"], shown["size"]) == (
            section["section_id"], section["idstr"], section["source"], section["size"]), where
        if "raw" in section:
            if full:
                assert shown["raw"] == ("hex", section["raw"]), where
        else:
            check_record(section, shown, full, where)
