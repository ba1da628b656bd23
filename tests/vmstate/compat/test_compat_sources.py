"""Hostile schema and dump files: ``compat diff`` gives one typed line naming the file and the JSON path (issue 12, 3.4)."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.cli import run_script
from tests.support.paths import ROOT
from vmstate.compat import SchemaFormatError, compare_sets, load_schema, schema_from_json

DUMP = ROOT / "compat_fixtures" / "dump-vmstate" / "x86_64-pc.json"
BASELINE = ROOT / "compat_fixtures" / "schema" / "vmstate-schema.json"


@cache
def small_dump() -> dict[str, Any]:
    """Three devices of a real QEMU 7.2 dump (one with a subsection, one with a nested struct)."""
    data = json.loads(DUMP.read_text())
    return {key: data[key] for key in ("vmschkmachine", "rtl8139", "i8042", "hpet")}


@cache
def small_schema() -> dict[str, Any]:
    """Three sections of our baseline schema (one a virtio device with custom layouts)."""
    data = json.loads(BASELINE.read_text())
    keep = ("timer", "virtio-rng@pci", "cpu_common", "PCIBUS")
    return {**data, "sections": {key: data["sections"][key] for key in keep}}


def _at(data: Any, path: tuple[Any, ...], value: Any) -> Any:
    out = copy.deepcopy(data)
    node = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


MARK = "\u0001MARK\u0001"


def _with_text(data: Any, path: tuple[Any, ...], text: str) -> str:
    """JSON of ``data`` with the value at ``path`` replaced by raw JSON ``text`` (deep nesting, long numbers)."""
    return json.dumps(_at(data, path, MARK)).replace(json.dumps(MARK), text)


RTL = ("rtl8139", "Description")
ARRAY = ("sections", "PCIBUS", "fields", "(irq_count)")
CASES = {
    "deep nesting": (small_dump, (*RTL, "Fields", 0, "Description"), "[" * 100_000 + "]" * 100_000,
                     "nests too deep"),
    "moderately deep nesting": (small_dump, (*RTL, "Fields", 0, "Description"), "[" * 300 + "]" * 300,
                                "rtl8139.Description.Fields[0].Description[0][0][0][0][0][0][0]...(187 more)...[0][0]: nests deeper than 200"),
    "a float for a version": (small_dump, (*RTL, "version_id"), "5.0",
                              "rtl8139.Description.version_id: a number that is not an integer (5.0)"),
    "NaN": (small_schema, ("sections", "timer", "version"), "NaN", "sections.timer.version: a number that is not"),
    "null subsections": (small_dump, (*RTL, "Subsections"), "null",
                         "rtl8139.Description.Subsections: is null, not a list"),
    "null subsections (ours)": (small_schema, ("sections", "timer", "subsections"), "null",
                                "sections.timer.subsections: is null, not a list"),
    "5,000 digits": (small_dump, (*RTL, "Fields", 1, "size"), "9" * 5000,
                     "rtl8139.Description.Fields[1].size: an integer of 5000 digits (at most 24)"),
    "a lone surrogate": (small_schema, ("sections", "timer", "name"), '"\\ud800"',
                         "sections.timer.name: text with a lone surrogate"),
    "an escape sequence": (small_schema, ("sections", "timer", "fields", 0, "name"), '"\\u001b[2J"',
                           "sections.timer.fields[0].name: text with a control character"),
    "a list for a map": (small_dump, (*RTL, "Fields", 0), "[]",
                         "rtl8139.Description.Fields[0]: is a list, not a map"),
    "a map for a list": (small_schema, ("sections", "timer", "fields"), "{}",
                         "sections.timer.fields: is a map, not a list"),
    "a map for a count": (small_schema, (*ARRAY, "count"), "{}", "sections.PCIBUS.fields[1].count: is a map, not"),
    "text for a multiplier": (small_schema, (*ARRAY, "multiply"), '"x"',
                              "sections.PCIBUS.fields[1].multiply: is text, not an integer"),
    "a version past u32": (small_schema, ("sections", "timer", "version"), str(1 << 40),
                           "sections.timer.version: version 1099511627776 is not in 0..4294967295"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_hostile_schema_file_is_one_line_naming_file_and_path(tmp_path: Path, case: str) -> None:
    base, path, text, message = CASES[case]
    if path[:4] == ARRAY:
        index = next(i for i, f in enumerate(base()["sections"]["PCIBUS"]["fields"]) if f["name"] == "irq_count")
        path = (*ARRAY[:3], index, path[-1])
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps(base()))
    bad.write_text(_with_text(base(), path, text))
    result = run_script("vmstate", "compat", "diff", good, bad)
    assert result.returncode == 2 and result.stdout == "", result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"vmstate: error: {bad}: ")
    assert message in result.stderr, result.stderr
    assert "\x1b" not in result.stderr and "\\ud800" not in result.stderr


def test_a_version_window_of_four_billion_versions_is_compared_quickly_enough_to_finish(tmp_path: Path) -> None:
    # both sides claim v0..v(2**32 - 1): the older-version walk looks at the newest 256 only
    wide = _at(_at(small_schema(), ("sections", "timer", "minimum_version"), 0), ("sections", "timer", "version"),
               (1 << 32) - 1)
    one = schema_from_json(wide, "a")
    report = compare_sets(one, one)
    assert report.exit_code("warning") == 0


def test_the_real_files_still_load(tmp_path: Path) -> None:
    assert len(load_schema(DUMP).sections) == 214
    assert load_schema(BASELINE).sections


WEIRD = st.sampled_from([None, 1.5, -1, 0, 1 << 70, "", "\ud800", "\x07", [], {}, [None], {"a": None}, True, "x"])


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            out += _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out += _paths(item, (*path, index))
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([small_dump, small_schema]), st.data())
def test_any_value_anywhere_gives_a_result_or_a_schema_format_error(base: Any, data: st.DataObject) -> None:
    original = base()
    mutated = original
    for _ in range(data.draw(st.integers(1, 3))):
        paths = _paths(mutated)[1:]
        path = data.draw(st.sampled_from(paths))
        if data.draw(st.integers(0, 9)) == 0 and isinstance(_parent(mutated, path), dict):
            mutated = copy.deepcopy(mutated)
            del _parent(mutated, path)[path[-1]]
        else:
            mutated = _at(mutated, path, data.draw(WEIRD))
    try:
        new = schema_from_json(mutated, "mutated")
    except SchemaFormatError as error:
        assert str(error).startswith("mutated: ")
        return
    report = compare_sets(schema_from_json(original, "original"), new)
    report.render("warning", show_info=True)
    json.dumps(report.as_json("warning"))


def _parent(data: Any, path: tuple[Any, ...]) -> Any:
    for key in path[:-1]:
        data = data[key]
    return data
