"""The schema export of every description, and the committed baseline it must equal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devices.virtio.common import SUBSECTION_NAMES
from devices.virtio.sections import DEVICE_CLASSES
from tests.support.paths import ROOT
from vmstate.compat import (
    CompatError,
    compare_sets,
    described,
    export_schema,
    schema_from_json,
    schema_text,
    write_schema,
)
from vmstate.compat.export import _resolve

BASELINE = ROOT / "compat_fixtures" / "schema" / "vmstate-schema.json"


def test_committed_baseline_is_todays_export() -> None:
    committed = BASELINE.read_text()
    if committed != schema_text():
        report = compare_sets(schema_from_json(json.loads(committed), "committed baseline"),
                              schema_from_json(export_schema(), "today"))
        pytest.fail(
            "the descriptions changed since compat_fixtures/schema/vmstate-schema.json was written.\n"
            "Record fixtures of the new behaviour (vmstate compat record), then replace the baseline on purpose:\n"
            "  vmstate compat schema -o compat_fixtures/schema/vmstate-schema.json --force\n\n" + report.render(),
            pytrace=False,
        )


def test_a_schema_with_the_old_little_endian_auto_name_loads_as_today() -> None:
    """Files written before the auto-name became ``uint64 little-endian`` say ``uint64 le``; QEMU's ``int32 le`` stays."""
    today = export_schema()
    text = json.dumps(today)
    assert text.count('"type": "uint64 little-endian"') >= 8 and text.count('"type": "uint32 little-endian"') >= 6
    old = schema_from_json(json.loads(text.replace(' little-endian"', ' le"')), "old names")
    report = compare_sets(old, schema_from_json(today, "today"))
    assert report.findings == () and report.only_old == report.only_new == ()
    pci = old.sections["I440FX"].fields[0].struct
    assert pci is not None and pci.fields[0].type == "int32 le"  # less-or-equal, big-endian: not renamed


def test_every_device_version_and_subsection_is_exported() -> None:
    sections = export_schema()["sections"]
    assert list(sections) == sorted(described())
    assert {f"{n}@{t}" for n in DEVICE_CLASSES for t in ("pci", "mmio")} <= set(sections)
    assert {"timer", "PCIHost", "port92", "cpu_common"} <= set(sections)
    for name in DEVICE_CLASSES:
        for transport in ("pci", "mmio"):
            section = sections[f"{name}@{transport}"]
            virtio, *trailing = section["fields"]
            assert [f["name"] for f in trailing] == (["virtio-gpu"] if name == "virtio-gpu" else [])
            layout = virtio["layout"]
            assert virtio["kind"] == "custom" and layout["transport"] == transport and layout["device"] == name
            assert [s["name"] for s in layout["virtio"]["subsections"]] == list(SUBSECTION_NAMES)
    net = sections["virtio-net@pci"]
    assert (net["minimum_version"], net["version"]) == (2, 11)
    part = net["fields"][0]["layout"]["device_part"]
    gates = {f["name"]: f.get("exists_versions", "state") for f in part["fields"] if "exists" in f}
    assert gates["promisc"] == [8, 9, 10, 11] and gates["promisc_v4"] == [4, 5, 6, 7]
    assert gates["max_queue_pairs"] == "state" and gates["curr_guest_offloads"] == "state"
    assert [s["name"] for s in part["subsections"]] == ["virtio-net-device/rss"]
    balloon = sections["virtio-balloon@pci"]["fields"][0]["layout"]["device_part"]
    assert [s["needed"].rsplit(".", 1)[1] for s in balloon["subsections"]] == ["_free_page_hint", "_page_poison"]


def test_a_baseline_is_replaced_only_on_purpose(tmp_path: Path) -> None:
    path = tmp_path / "schema.json"
    write_schema(path)
    with pytest.raises(CompatError, match="on purpose only"):
        write_schema(path)
    write_schema(path, force=True)
    assert path.read_text() == schema_text()


def test_exists_tests_are_resolved_only_from_loaded_modules() -> None:
    assert _resolve("devices.virtio.net._v8_on") is not None
    assert _resolve("no_such_package.module._test") is None
    assert _resolve("tests.test_schema.<lambda>") is None
