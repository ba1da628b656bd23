"""Our virtio descriptions against QEMU 7.2's own ``-dump-vmstate`` for the same devices.

QEMU's dump holds each device class's ``dc->vmsd``.  For a virtio device that
is the section vmsd (``virtio-net``, version 11) with one field, ``virtio``,
of the custom ``virtio`` VMStateInfo (size 0: its layout is code).  The
device's own vmsd (``virtio-net-device``) and the ``virtio`` vmsd with its
subsections are reached through that code, so the dump does not list them;
the real 7.2 streams in the fixture corpus check those, byte for byte.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from devices.virtio.sections import DEVICE_CLASSES, section_description
from tests.support.paths import ROOT
from vmstate.compat import (
    OLD_TO_NEW,
    compare_sets,
    export_schema,
    load_schema,
    schema_from_json,
)
from vmstate.description import Custom

DUMPS = ROOT / "compat_fixtures" / "dump-vmstate"
#: QEMU type names of the virtio device classes we describe
QEMU_TYPES = {
    "virtio-net": "virtio-net-device",
    "virtio-blk": "virtio-blk-device",
    "virtio-console": "virtio-serial-device",
    "virtio-balloon": "virtio-balloon-device",
    "virtio-rng": "virtio-rng-device",
    "virtio-scsi": "virtio-scsi-device",
    "virtio-9p": "virtio-9p-device",
    "virtio-input": "virtio-keyboard-device",
    "virtio-gpu": "virtio-gpu-device",
    "virtio-iommu": "virtio-iommu-device",
    "virtio-mem": "virtio-mem",
}
#: fields after ``virtio`` in QEMU's vmsd (virtio-gpu's own custom info)
TRAILING_FIELDS = {"virtio-gpu": ["virtio-gpu"]}
#: where we load more than QEMU 7.2 does: its loaders since 2.2 took older versions, 7.2 refuses them
OLDER_VERSIONS_WE_LOAD = {"virtio-net": (2, 11), "virtio-console": (1, 3)}


@pytest.fixture(scope="module")
def qemu() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DUMPS / "x86_64-pc.json").read_text())
    return data


def test_every_device_class_we_model_is_in_qemus_dump() -> None:
    assert set(QEMU_TYPES) == set(DEVICE_CLASSES)


@pytest.mark.parametrize("name", sorted(QEMU_TYPES))
@pytest.mark.parametrize("transport", ["pci", "mmio"])
def test_name_versions_and_fields_match_qemu(qemu: dict[str, Any], name: str, transport: str) -> None:
    entry = qemu[QEMU_TYPES[name]]
    vmsd = entry["Description"]
    ours = section_description(name, transport)
    assert vmsd["name"] == ours.name == name
    assert vmsd["version_id"] == entry["version_id"] == ours.version
    assert ours.minimum_version <= vmsd["minimum_version_id"] == vmsd["version_id"]
    if name in OLDER_VERSIONS_WE_LOAD:
        assert (ours.minimum_version, ours.version) == OLDER_VERSIONS_WE_LOAD[name]
    else:
        assert ours.minimum_version == vmsd["minimum_version_id"]
    # the custom `virtio` info, whose size QEMU gives as 0 (the layout is code), and virtio-gpu's own info
    names = ["virtio", *TRAILING_FIELDS.get(name, [])]
    assert [(f["field"], f["size"], f["version_id"], f["field_exists"]) for f in vmsd["Fields"]] == [(n, 0, 0, False) for n in names]
    assert [f.name for f in ours.fields] == names
    assert all(isinstance(f.kind, Custom) and f.kind.type_name == f.name for f in ours.fields)
    field = ours.fields[0]
    assert field.name == "virtio" and isinstance(field.kind, Custom) and field.kind.type_name == "virtio"
    assert field.since_version == 0 and field.exists is None
    assert "Subsections" not in vmsd and ours.subsections == ()


@pytest.mark.parametrize("target", ["ppc64-pseries", "aarch64-virt", "x86_64-q35", "x86_64-pc-i440fx-2.2"])
def test_virtio_vmsds_are_the_same_on_every_target_and_machine(qemu: dict[str, Any], target: str) -> None:
    other = json.loads((DUMPS / f"{target}.json").read_text())
    # Debian's qemu-system-ppc64 7.2 has no virtio-mem (absent from its -device help and its dump)
    missing = {"virtio-mem"} if target == "ppc64-pseries" else set()
    for qemu_type in QEMU_TYPES.values():
        if qemu_type in missing:
            assert qemu_type not in other
        else:
            assert other[qemu_type] == qemu[qemu_type]


#: where our machine sections (devices.machine) and QEMU's dump disagree, by design:
#: the dump lists both PCI config spaces (a field_exists test each) and both fw_cfg
#: offsets, and sizes irq_state as one 16-byte buffer, where ours is the conventional
#: PCI device at version 2 under the names QEMU's vmdesc uses; piix4_pm's layout is two
#: variants of ours instead of _TEST gates, and its hot-plug device arrays, sized by the
#: machine (not the stream), are not described.  The _TEST alternatives are warnings: the
#: dump does not say what the tests decide, and either choice can keep the bytes aligned
KNOWN_MACHINE_DIFFERENCES = {
    ("I440FX", "parent_obj.irq_state"), ("PIIX3", "dev.irq_state"),
    ("piix4_pm", "parent_obj.irq_state"), ("piix4_pm", "{piix4_pm/cpuhp}"),
    ("piix4_pm", "{piix4_pm/memhp}.acpi_memory_hotplug.devs"),
}
KNOWN_MACHINE_WARNINGS = {
    ("I440FX", "parent_obj.config#2"), ("PIIX3", "dev.config#2"),
    ("fw_cfg", "cur_offset"), ("fw_cfg", "cur_offset#2"), ("fw_cfg", "cur_offset[1]"),
    ("piix4_pm", "acpi_pci_hotplug.acpi_pcihp_pci_status[0x0]"), ("piix4_pm", "parent_obj.config#2"),
}


def _errors(report: Any, ours_side: int) -> set[tuple[str, str]]:
    return {(f.device.split(" ~ ")[ours_side], f.path) for f in report.findings if f.severity == "error"}


def test_the_static_check_finds_only_the_older_versions_we_load() -> None:
    ours = schema_from_json(export_schema(), "ours")
    qemu = load_schema(DUMPS / "x86_64-pc.json")
    forward = compare_sets(qemu, ours)  # QEMU 7.2's streams into our code
    assert forward.matched_by == "vmsd name"
    assert _errors(forward, -1) == KNOWN_MACHINE_DIFFERENCES
    depends = {(f.device.split(" ~ ")[-1], f.path) for f in forward.findings if f.rule == "field-presence-depends"}
    assert KNOWN_MACHINE_WARNINGS <= depends
    compared = {a.split(" ~ ")[0] for a in forward.compared}
    assert {QEMU_TYPES[name] for name in DEVICE_CLASSES} <= compared
    virtio = [f for f in forward.findings if f.device.split(" ~ ")[0] in QEMU_TYPES.values()]
    assert {(f.device, f.rule, f.severity, f.directions, f.new_versions) for f in virtio} == {
        (f"{QEMU_TYPES[name]} ~ {name}@{t}", "minimum-version-lowered", "info", (OLD_TO_NEW,), f"{low}..{high}")
        for name, (low, high) in OLDER_VERSIONS_WE_LOAD.items() for t in ("pci", "mmio")
    }
    # the other way round the same facts read as QEMU 7.2 refusing what we still load
    backward = compare_sets(ours, qemu)
    refused = {f.device for f in backward.findings if f.rule == "minimum-version-raised"}
    assert {f"{name}@{t} ~ {QEMU_TYPES[name]}" for name in OLDER_VERSIONS_WE_LOAD for t in ("pci", "mmio")} <= refused
    assert _errors(backward, 0) == KNOWN_MACHINE_DIFFERENCES - {("piix4_pm", "{piix4_pm/cpuhp}")}


def test_plain_sections_we_describe_match_qemu_field_sizes() -> None:
    ours = schema_from_json(export_schema(), "ours")
    qemu = load_schema(DUMPS / "x86_64-pc.json")
    for ours_key, qemu_type in (("pcspk", "isa-pcspk"), ("PCIHost", "pci-host-bridge"), ("port92", "port92")):
        mine, theirs = ours.sections[ours_key], qemu.sections[qemu_type]
        assert mine.name == theirs.name and mine.version == theirs.version
        assert [(f.name, f.size) for f in mine.fields] == [(f.name, f.size) for f in theirs.fields]
    # port92 is the one whose window differs: we also take version 0
    assert (ours.sections["port92"].minimum_version, qemu.sections["port92"].minimum_version) == (0, 1)
