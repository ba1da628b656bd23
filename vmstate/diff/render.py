"""Show a ``DiffReport``: human lines (optionally coloured), a summary, or JSON.

The JSON shape is versioned by ``JSON_SCHEMA`` and documented in the README
("migration-diff output").
"""

from __future__ import annotations

import re
from typing import Any, Callable, Iterator

from vmstate.display import DisplayTable, shown
from vmstate.dump.fold import MIN_FOLDED
from vmstate.text import printable

from .compare import DiffReport, RamDiff, SectionDiff
from .pages import PageRange
from .values import FieldChange

__all__ = ["render_text", "render_summary", "report_to_json", "JSON_SCHEMA"]

JSON_SCHEMA = "vmstate-forge/migration-diff/1"
_SHORT_BYTES = 16
_MAX_RUNS = 8
Style = Callable[[str, str], str]


def _plain(text: str, _role: str) -> str:
    return text


_NO_TABLE: DisplayTable = {}


def _section_name(idstr: str, instance_id: int) -> str:
    return printable(idstr if instance_id == 0 else f"{idstr}#{instance_id}")


def _record(value: dict[str, Any], owner: str | None, table: DisplayTable) -> str:
    """A record value (a subsection on one side) on one line."""
    inner = ", ".join(
        f"{printable(k)}={_value(v, table.get((owner, k)) if owner else None)}" for k, v in value["fields"].items()
    )
    text = f"v{value.get('version')}: {inner}" if inner else f"v{value.get('version')}"
    return text if len(text) <= 100 else text[:97] + "..."


def _value(value: Any, kind: Any = None) -> str:
    """A value for a text line; ``kind`` (from the display table) may name it."""
    named = shown(value, kind)
    if named is not None:
        return named
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value) if -65536 < value < 65536 else hex(value)
    if isinstance(value, bytes):
        return value.hex() if len(value) <= _SHORT_BYTES else f"{value[:_SHORT_BYTES].hex()}... ({len(value)} bytes)"
    if isinstance(value, dict) and "fields" in value:
        return _record(value, None, _NO_TABLE)
    if isinstance(value, list):
        text = "[" + ", ".join(_value(v) for v in value[:8]) + (", ...]" if len(value) > 8 else "]")
        return text
    return printable(str(value))


def _kind_of(change: FieldChange, table: DisplayTable) -> Any:
    """The changed field's kind in the display table, if it has one there."""
    return table.get((change.owner, change.path.rsplit(".", 1)[-1])) if change.owner else None


def _change_value(change: FieldChange, value: Any, table: DisplayTable) -> str:
    if isinstance(value, dict) and "fields" in value:
        owner = change.owner if change.kind.startswith("subsection_") else None
        return _record(value, owner, table)
    return _value(value, _kind_of(change, table))


def _byte_runs(a: bytes, b: bytes) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for i in range(max(len(a), len(b))):
        if i < len(a) and i < len(b) and a[i] == b[i]:
            continue
        if runs and runs[-1][1] == i:
            runs[-1] = (runs[-1][0], i + 1)
        else:
            runs.append((i, i + 1))
    return runs


def _raw_text(change: FieldChange, style: Style) -> str:
    """``(raw body)``: the two sizes and where they first differ."""
    size_a, size_b = change.a["size"], change.b["size"]
    sizes = f"{size_a} bytes" if size_a == size_b else f"{style(str(size_a), 'a')} -> {style(str(size_b), 'b')} bytes"
    return f"{change.path}: {sizes}, first difference at byte {change.a['first_difference']:#x}"


def _change_text(change: FieldChange, style: Style, table: DisplayTable = _NO_TABLE) -> str:
    if change.path == "(raw body)" and isinstance(change.a, dict):
        return _raw_text(change, style)
    old, new = style(_change_value(change, change.a, table), "a"), style(_change_value(change, change.b, table), "b")
    path = printable(change.path)
    if change.kind in ("only_a", "only_b"):
        side, value = ("A", old) if change.kind == "only_a" else ("B", new)
        return f"{path}: only in {side}: {value}"
    if change.kind in ("subsection_only_a", "subsection_only_b"):
        side, value = ("A", old) if change.kind == "subsection_only_a" else ("B", new)
        return f"{path}: subsection only in {side} ({value})"
    long_bytes = isinstance(change.a, bytes) and isinstance(change.b, bytes) and max(len(change.a), len(change.b)) > _SHORT_BYTES
    if long_bytes and shown(change.a, _kind_of(change, table)) is None:
        runs = _byte_runs(change.a, change.b)
        parts = []
        for s, e in runs[:_MAX_RUNS]:
            old_run, new_run = change.a[s:e][:_SHORT_BYTES].hex(), change.b[s:e][:_SHORT_BYTES].hex()
            parts.append(f"[{s:#x}..{e - 1:#x}] {style(old_run, 'a')} -> {style(new_run, 'b')}")
        more = f", and {len(runs) - _MAX_RUNS} more runs" if len(runs) > _MAX_RUNS else ""
        return f"{path}: {len(change.a)} bytes, {sum(e - s for s, e in runs)} differ: " + ", ".join(parts) + more
    return f"{path}: {old} -> {new}"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _range_text(page_range: PageRange, page_size: int) -> str:
    start = page_range.first * page_size
    end = start + page_range.count * page_size - 1
    what = {"changed": "changed", "only_a": "only in A", "only_b": "only in B"}[page_range.kind]
    return f"{start:#x}-{end:#x}: {_count(page_range.count, 'page')} {what}"


def _differ(n: int, noun: str) -> str:
    """``1 page differs``, ``2 pages differ``."""
    return f"{_count(n, noun)} {'differs' if n == 1 else 'differ'}"


def _section_lines(section: SectionDiff, style: Style, table: DisplayTable) -> Iterator[str]:
    name = style(_section_name(section.idstr, section.instance_id), "section")
    if section.status == "only_a":
        yield f"{name}: section only in A (version {section.version_a})"
    elif section.status == "only_b":
        yield f"{name}: section only in B (version {section.version_b})"
    else:
        for line in _folded([(change.path, _change_text(change, style, table)) for change in section.changes]):
            yield f"{name}: {line}"


#: the last list index of a path, outside any quoted field name: (before it, the index, after it)
_LAST_INDEX = re.compile(r'^(.*)\[(\d+)\]([^\[]*)$')


def _folded(changes: list[tuple[str, str]]) -> Iterator[str]:
    """Change lines, with runs of list items that changed alike as one line.

    Items ``p[i]s`` for consecutive ``i`` (at least ``MIN_FOLDED + 1`` of
    them) whose lines read the same after the path become
    ``p[i..j]s: ... (N items)``, where the first of them was; the others keep
    their order.
    """
    Key = tuple[str, str, str]
    found: list[tuple[Key, int] | None] = []
    indices: dict[Key, list[int]] = {}
    for path, line in changes:
        shown_path = printable(path)
        match = _LAST_INDEX.match(shown_path) if line.startswith(shown_path) else None
        if match is None or match.group(1).count('"') % 2:
            found.append(None)
            continue
        key = (match.group(1), match.group(3), line[len(shown_path):])
        found.append((key, int(match.group(2))))
        indices.setdefault(key, []).append(int(match.group(2)))
    runs = {key: _runs(values) for key, values in indices.items()}
    done: set[tuple[Key, int]] = set()
    for (_path, line), place in zip(changes, found):
        run = None
        if place is not None:
            key, index = place
            run = next(((first, last) for first, last in runs[key] if first <= index <= last), None)
        if place is None or run is None or run[1] - run[0] < MIN_FOLDED:
            yield line
        elif (place[0], run[0]) not in done:
            done.add((place[0], run[0]))
            before, after, rest = place[0]
            yield f"{before}[{run[0]}..{run[1]}]{after}{rest} ({run[1] - run[0] + 1} items)"


def _runs(found: list[int]) -> list[tuple[int, int]]:
    """Runs of consecutive values in ``found`` (in the order found), as (first, last)."""
    runs: list[tuple[int, int]] = []
    for value in found:
        if runs and value == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], value)
        else:
            runs.append((value, value))
    return runs


def _ram_lines(ram: RamDiff, style: Style) -> Iterator[str]:
    name = style(printable(f"ram/{ram.block}"), "section")
    if ram.status != "changed":
        side = "A" if ram.status == "only_a" else "B"
        yield f"{name}: RAM block only in {side}"
    if ram.length_a != ram.length_b and ram.status == "changed":
        yield f"{name}: length {style(_value(ram.length_a), 'a')} -> {style(_value(ram.length_b), 'b')}"
    if ram.differing_pages:
        ranges = _count(len(ram.ranges) + ram.more_ranges, "range")
        yield f"{name}: {_differ(ram.differing_pages, 'page')} in {ranges}"
        for page_range in ram.ranges:
            yield f"  {_range_text(page_range, ram.page_size)}"
        if ram.more_ranges:
            yield f"  ... and {ram.more_ranges} more ranges"


def _heading(report: DiffReport) -> Iterator[str]:
    yield printable(f"--- A: {report.a[0]} ({report.a[1]})")
    yield printable(f"+++ B: {report.b[0]} ({report.b[1]})")


def render_text(report: DiffReport, style: Style = _plain, table: DisplayTable = _NO_TABLE) -> Iterator[str]:
    """Every difference, one per line, in stream order; ``table`` names values (``vmstate.display``)."""
    yield from _heading(report)
    for change in report.header:
        yield f"{style('stream', 'section')}: {_change_text(change, style, table)}"
    for section in report.sections:
        yield from _section_lines(section, style, table)
    for ram in report.ram:
        yield from _ram_lines(ram, style)
    if report.identical:
        yield "no differences"


def render_summary(report: DiffReport, style: Style = _plain) -> Iterator[str]:
    """One line per differing section or RAM block, then totals."""
    yield from _heading(report)
    if report.header:
        yield f"{style('stream', 'section')}: {_count(len(report.header), 'header difference')}"
    for section in report.sections:
        name = style(_section_name(section.idstr, section.instance_id), "section")
        if section.status == "changed" and [c.path for c in section.changes] == ["(raw body)"]:
            yield f"{name}: raw body differs"
        elif section.status == "changed":
            yield f"{name}: {_differ(len(section.changes), 'field')}"
        else:
            yield f"{name}: only in {'A' if section.status == 'only_a' else 'B'}"
    for ram in report.ram:
        yield f"{style(printable('ram/' + ram.block), 'section')}: {_differ(ram.differing_pages, 'page')}"
    if report.identical:
        yield "no differences"
    else:
        pages = sum(r.differing_pages for r in report.ram)
        yield f"{_differ(len(report.sections), 'section')}, {_differ(pages, 'RAM page')}"


def _json_value(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    return value


def _change_json(change: FieldChange) -> dict[str, Any]:
    return {"path": change.path, "kind": change.kind, "a": _json_value(change.a), "b": _json_value(change.b)}


def report_to_json(report: DiffReport) -> dict[str, Any]:
    """The report in the documented JSON shape (``schema`` = ``JSON_SCHEMA``)."""
    return {
        "schema": JSON_SCHEMA,
        "a": {"path": report.a[0], "format": report.a[1]},
        "b": {"path": report.b[0], "format": report.b[1]},
        "identical": report.identical,
        "header": [_change_json(c) for c in report.header],
        "sections": [
            {
                "section": s.idstr,
                "instance_id": s.instance_id,
                "status": s.status,
                "version": {"a": s.version_a, "b": s.version_b},
                "changes": [_change_json(c) for c in s.changes],
            }
            for s in report.sections
        ],
        "ram": [
            {
                "block": r.block,
                "status": r.status,
                "length": {"a": r.length_a, "b": r.length_b},
                "page_size": r.page_size,
                "differing_pages": r.differing_pages,
                "ranges": [
                    {"first_page": p.first, "pages": p.count, "kind": p.kind,
                     "start": p.first * r.page_size, "end": (p.first + p.count) * r.page_size}
                    for p in r.ranges
                ],
                "more_ranges": r.more_ranges,
            }
            for r in report.ram
        ],
    }
