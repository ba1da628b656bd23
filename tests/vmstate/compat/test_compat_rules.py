"""The static check's rules, one change at a time, on small descriptions and on QEMU's own dumps."""

from __future__ import annotations

import copy
import json
from functools import cache
from typing import Any

import attrs
import pytest

from tests.support.paths import ROOT
from vmstate.compat import (
    BOTH,
    NEW_TO_OLD,
    OLD_TO_NEW,
    SchemaFormatError,
    SchemaSet,
    compare_sets,
    export_schema,
    load_schema,
    schema_from_json,
)
from vmstate.description import (
    Array,
    Buffer,
    Custom,
    Description,
    Field,
    Struct,
    Unused,
)
from vmstate.kinds import INT32, UINT8, UINT16, UINT32

DUMPS = ROOT / "compat_fixtures" / "dump-vmstate"


def _sub_needed(_state: Any) -> bool:
    return True


def _v3_on(_view: Any, version: int) -> bool:
    return version >= 3


def _has_queues(view: Any, _version: int) -> bool:
    return bool(view.queues)


INNER = Description(name="inner", version=1, minimum_version=1, fields=(Field(name="x", kind=UINT16),))
SUB = Description(name="dev/sub", version=1, minimum_version=1, needed=_sub_needed, fields=(Field(name="y", kind=UINT8),))
BASE = Description(
    name="dev",
    version=3,
    minimum_version=1,
    fields=(
        Field(name="a", kind=UINT32),
        Field(name="b", kind=UINT16),
        Field(name="n", kind=UINT8),
        Field(name="buf", kind=Buffer(length_from="n", multiply=2)),
        Field(name="s", kind=Struct(description=INNER)),
        Field(name="c", kind=UINT8, since_version=2),
        Field(name="d", kind=UINT8, exists=_v3_on),
    ),
    subsections=(SUB,),
)


def schema(*descriptions: Description, label: str = "s") -> SchemaSet:
    return schema_from_json(export_schema({d.name: d for d in descriptions}), label)


def found(new: Description, old: Description = BASE) -> set[tuple[str, str, tuple[str, ...], str]]:
    report = compare_sets(schema(old, label="old"), schema(new, label="new"))
    return {(f.rule, f.severity, f.directions, f.path) for f in report.findings}


def edit(**changes: Any) -> Description:
    return attrs.evolve(BASE, **changes)


def replace_field(field: str, **changes: Any) -> Description:
    return edit(fields=tuple(attrs.evolve(f, **changes) if f.name == field else f for f in BASE.fields))


def test_identical_schemas_have_no_findings() -> None:
    assert found(BASE) == set()


def test_version_gates_that_depend_on_the_version_alone_are_evaluated() -> None:
    d = next(f for f in export_schema({"dev": BASE})["sections"]["dev"]["fields"] if f["name"] == "d")
    assert d["exists_versions"] == [3]
    gated = attrs.evolve(BASE, fields=(*BASE.fields, Field(name="q", kind=UINT8, exists=_has_queues)))
    q = export_schema({"dev": gated})["sections"]["dev"]["fields"][-1]
    assert q["exists_depends_on_state"] is True


@pytest.mark.parametrize(
    ("new", "expected"),
    [
        (edit(fields=(BASE.fields[1], BASE.fields[0], *BASE.fields[2:])),
         ("fields-reordered", "error", BOTH, "(fields)")),
        (replace_field("b", kind=UINT32), ("field-resized", "error", BOTH, "b")),
        (replace_field("a", kind=INT32), ("field-type-changed", "warning", BOTH, "a")),
        (replace_field("buf", kind=Buffer(length_from="n", multiply=4)), ("field-resized", "error", BOTH, "buf")),
        (replace_field("s", kind=Struct(description=attrs.evolve(INNER, fields=(Field(name="x", kind=UINT32),)))),
         ("field-resized", "error", BOTH, "s.x")),
        (edit(fields=BASE.fields[:-1]), ("field-removed", "error", BOTH, "d")),
        (edit(fields=(*BASE.fields, Field(name="e", kind=UINT8))), ("field-added", "error", BOTH, "e")),
        (edit(fields=(*BASE.fields, Field(name="e", kind=UINT8, since_version=3))),
         ("field-added", "error", BOTH, "e")),
        (replace_field("c", since_version=4), ("field-gate-changed", "error", BOTH, "c")),
        (replace_field("c", since_version=1), ("older-version-misread", "warning", (OLD_TO_NEW,), "c")),
        (replace_field("d", exists=_has_queues), ("field-presence-depends", "warning", BOTH, "d")),
        (replace_field("a", name="a_renamed"), ("field-renamed", "info", BOTH, "a_renamed")),
        (replace_field("a", name="reserved", kind=Unused(size=4)), ("field-retired", "info", BOTH, "reserved")),
        (edit(version=4, fields=(*BASE.fields, Field(name="e", kind=UINT8, since_version=4))),
         ("field-added-gated", "info", (OLD_TO_NEW,), "e")),
        (edit(version=4), ("version-raised", "error", (NEW_TO_OLD,), "(section)")),
        (edit(version=2, fields=BASE.fields[:-1]), ("version-lowered", "error", (OLD_TO_NEW,), "(section)")),
        (edit(minimum_version=2), ("minimum-version-raised", "warning", (OLD_TO_NEW,), "(section)")),
        (edit(version=5, minimum_version=4), ("minimum-version-raised", "error", (OLD_TO_NEW,), "(section)")),
        (edit(minimum_version=0), ("minimum-version-lowered", "info", (OLD_TO_NEW,), "(section)")),
        (edit(subsections=()), ("subsection-removed", "error", (OLD_TO_NEW,), "{dev/sub}")),
        (edit(subsections=(attrs.evolve(SUB, name="dev/other"),)), ("subsection-renamed", "error", BOTH, "{dev/sub}")),
        (edit(subsections=(SUB, attrs.evolve(SUB, name="dev/new"))), ("subsection-added", "info", (NEW_TO_OLD,), "{dev/new}")),
        (edit(subsections=(SUB, attrs.evolve(SUB, name="dev/new", needed=None))),
         ("subsection-added-always", "error", (NEW_TO_OLD,), "{dev/new}")),
        (edit(subsections=(attrs.evolve(SUB, needed=None),)),
         ("needed-made-mandatory", "warning", (NEW_TO_OLD,), "{dev/sub}")),
        (edit(subsections=(attrs.evolve(SUB, fields=(*SUB.fields, Field(name="z", kind=UINT8))),)),
         ("field-added", "error", BOTH, "{dev/sub}.z")),
        (edit(subsections=(attrs.evolve(SUB, version=2),)), ("version-raised", "error", (NEW_TO_OLD,), "{dev/sub}")),
    ],
    ids=lambda value: value[0] if isinstance(value, tuple) else "",
)
def test_rule(new: Description, expected: tuple[str, str, tuple[str, ...], str]) -> None:
    assert expected in found(new)


def test_a_section_whose_vmsd_is_renamed() -> None:
    renamed = schema_from_json(export_schema({"dev": attrs.evolve(BASE, name="device", subsections=())}), "new")
    got = {(f.rule, f.severity, f.directions) for f in compare_sets(schema(BASE), renamed).findings}
    assert ("vmsd-renamed", "error", BOTH) in got


def test_compatible_changes_exit_0_and_breaking_ones_exit_1() -> None:
    renamed = compare_sets(schema(BASE), schema(replace_field("a", name="a_renamed")))
    assert renamed.exit_code() == 0 and renamed.count("info") == 1
    added = compare_sets(schema(BASE), schema(edit(subsections=(SUB, attrs.evolve(SUB, name="dev/z")))))
    assert added.exit_code() == 0 and added.count("info") == 1
    warning_only = compare_sets(schema(BASE), schema(edit(minimum_version=2)))
    assert warning_only.exit_code() == 1 and warning_only.exit_code("error") == 0


def test_sections_only_on_one_side() -> None:
    report = compare_sets(schema(BASE, INNER), schema(BASE, SUB))
    rules = {(f.device, f.rule, f.severity) for f in report.findings}
    assert rules == {("inner", "section-removed", "error"), ("dev/sub", "section-added", "info")}


class _PartCodec:
    """A custom field holding one described part (as the virtio codec holds a device's part)."""

    def __init__(self, part: Description, transport: str) -> None:
        self.part, self.transport = part, transport

    def decode(self, reader: Any, context: Any) -> Any:
        from vmstate.engine import decode

        return decode(self.part, reader, self.part.version, limits=context.limits, path=context.path)

    def encode(self, value: Any, context: Any) -> bytes:
        from vmstate.engine import encode

        return encode(self.part, value, path=context.path)

    def describe(self) -> dict[str, Any]:
        from vmstate.schema import description_to_json

        return {"transport": self.transport, "part": description_to_json(self.part, _top=False)}


def test_custom_layout_parts_are_compared_as_vmsds() -> None:
    from vmstate.description import Record
    from vmstate.engine import decode, encode
    from vmstate.wire import ByteReader

    def custom(part: Description, transport: str) -> Description:
        return Description(name="cdev", version=1, minimum_version=1,
                           fields=(Field(name="blob", kind=Custom(codec=_PartCodec(part, transport), type_name="blob")),))

    # the custom field really reads and writes its part
    record = Record(version=1, fields={"blob": Record(version=1, fields={"x": 0x1234})})
    assert encode(custom(INNER, "pci"), record) == b"\x12\x34"
    assert decode(custom(INNER, "pci"), ByteReader(b"\x12\x34"), 1) == record
    old = custom(INNER, "pci")
    grown = attrs.evolve(INNER, fields=(*INNER.fields, Field(name="w", kind=UINT8)))
    got = found(custom(grown, "mmio"), old)
    assert ("field-added", "error", BOTH, "blob.{inner}.w") in got
    assert ("custom-layout-changed", "warning", BOTH, "blob.<transport>") in got


# ------------------------------------------------------------------ QEMU's -dump-vmstate


@cache
def _dump(name: str) -> str:
    return (DUMPS / f"{name}.json").read_text()


def dump(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(_dump(name))
    return data


def test_qemu_dumps_are_recognised_and_normalized() -> None:
    pc = load_schema(DUMPS / "x86_64-pc.json")
    assert pc.format == "qemu-dump-vmstate" and pc.machine == "pc-i440fx-7.2" and pc.sizes == "qemu"
    net = pc.sections["virtio-net-device"]
    assert (net.name, net.version, net.minimum_version) == ("virtio-net", 11, 11)
    (virtio,) = net.fields
    assert virtio.name == "virtio" and virtio.opaque and virtio.size == 0
    bridge = pc.sections["pci-bridge"].fields[0].struct
    assert bridge is not None and [f.name for f in bridge.fields] == ["version_id", "config", "config#2", "irq_state"]
    assert bridge.fields[3].since_version == 2 and bridge.fields[1].gate == "field_exists"


def test_pc_7_2_against_pc_2_2_dump() -> None:
    report = compare_sets(load_schema(DUMPS / "x86_64-pc-i440fx-2.2.json"), load_schema(DUMPS / "x86_64-pc.json"))
    # -dump-vmstate lists device classes: the same 214 vmsds whatever the machine type
    assert len(report.compared) == 214 and report.findings == ()
    assert report.exit_code() == 0
    assert any("pc-i440fx-2.2 -> pc-i440fx-7.2" in note for note in report.notes)


def test_x86_64_against_ppc64_dump_lists_only_missing_device_types() -> None:
    x86, ppc = load_schema(DUMPS / "x86_64-pc.json"), load_schema(DUMPS / "ppc64-pseries.json")
    report = compare_sets(x86, ppc)
    assert {f.rule for f in report.findings} == {"section-removed", "section-added"}
    # a type only x86 has is paired with a ppc64 type of the same vmsd (name and fields), not removed
    alike = {k for k in x86.sections.keys() - ppc.sections.keys()
             if any(v.name == x86.sections[k].name and [f.name for f in v.fields] == [f.name for f in x86.sections[k].fields]
                    for v in ppc.sections.values())}
    assert report.count("error") == len(x86.sections.keys() - ppc.sections.keys() - alike) > 0
    assert "PIIX3" in {f.device for f in report.findings if f.rule == "section-removed"}


def _top_with_subsections(data: dict[str, Any]) -> str:
    return next(k for k, v in sorted(data.items()) if isinstance(v, dict) and v.get("Description", {}).get("Subsections"))


def test_rules_apply_to_qemu_dumps() -> None:
    old = dump("x86_64-pc")
    new = copy.deepcopy(old)
    new["isa-pcspk"]["Description"]["Fields"][0]["size"] = 2
    new["port92"]["Description"]["version_id"] = new["port92"]["version_id"] = 2
    with_subs = _top_with_subsections(new)
    gone = new[with_subs]["Description"]["Subsections"].pop(0)
    report = compare_sets(schema_from_json(old, "old"), schema_from_json(new, "new"))
    got = {(f.device, f.rule, f.severity, f.directions, f.path) for f in report.findings}
    assert ("isa-pcspk", "field-resized", "error", BOTH, "data_on") in got
    assert ("port92", "version-raised", "error", (NEW_TO_OLD,), "(section)") in got
    assert (with_subs, "subsection-removed", "error", (OLD_TO_NEW,), f"{{{gone['name']}}}") in got
    assert len(got) == 3


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not JSON"),
        ('{"some": "thing"}', "neither a vmstate-forge schema nor QEMU -dump-vmstate output"),
        ('{"format": "vmstate-forge-schema", "sections": {"x": {"name": "x", "fields": []}}}', "x: missing 'version'"),
    ],
)
def test_unreadable_schema_files_are_errors(tmp_path: Any, content: str, message: str) -> None:
    path = tmp_path / "schema.json"
    path.write_text(content)
    with pytest.raises(SchemaFormatError, match=message):
        load_schema(path)


def test_a_single_describe_output_is_accepted() -> None:
    from vmstate.schema import description_to_json

    single = schema_from_json(json.loads(json.dumps(description_to_json(BASE))), "describe")
    assert list(single.sections) == ["dev"] and compare_sets(single, single).findings == ()
    # `vmstate describe` does not evaluate exists tests: their presence is left to the state
    assert [f.name for f in single.sections["dev"].fields] == [f.name for f in BASE.fields]
    assert single.sections["dev"].fields[-1].gate_versions is None


def test_arrays_of_structs_compare_their_count_and_their_elements() -> None:
    def queues(count: int, element: Description = INNER) -> Description:
        return Description(name="q", version=1, minimum_version=1,
                           fields=(Field(name="vq", kind=Array(element=Struct(description=element), count=count)),))

    assert found(queues(8), queues(4)) == {("field-resized", "error", BOTH, "vq")}
    wider = attrs.evolve(INNER, fields=(Field(name="x", kind=UINT32),))
    assert found(queues(4, wider), queues(4)) == {("field-resized", "error", BOTH, "vq.x")}


# ------------------------------------------------------------------ padding slots and exists tests


def _dump_fields(fields: list[tuple[str, int, bool]], name: str = "dev") -> dict[str, Any]:
    """A one-type QEMU dump whose vmsd has ``(field, size, field_exists)`` fields."""
    described = [{"field": f, "version_id": 0, "field_exists": test, "size": size} for f, size, test in fields]
    return {"vmschkmachine": {"Name": "m"},
            name: {"Name": name, "version_id": 1, "minimum_version_id": 1,
                   "Description": {"name": name, "version_id": 1, "minimum_version_id": 1, "Fields": described}}}


def dump_found(old: dict[str, Any], new: dict[str, Any]) -> set[tuple[str, str, tuple[str, ...], str]]:
    report = compare_sets(schema_from_json(old, "old"), schema_from_json(new, "new"))
    return {(f.rule, f.severity, f.directions, f.path) for f in report.findings}


def errors_in(got: set[tuple[str, str, tuple[str, ...], str]]) -> set[tuple[str, str, tuple[str, ...], str]]:
    return {g for g in got if g[1] == "error"}


def test_fields_retired_into_padding_of_their_bytes_keep_the_layout() -> None:
    retired = edit(fields=(Field(name="pad", kind=Unused(size=6)), *BASE.fields[2:]))
    got = found(retired)
    assert ("field-retired", "info", BOTH, "pad") in got and not errors_in(got)
    assert ("field-from-padding", "info", BOTH, "a") in found(BASE, old=retired)


def test_padding_of_other_bytes_is_still_an_error() -> None:
    got = found(edit(fields=(Field(name="pad", kind=Unused(size=5)), *BASE.fields[2:])))
    assert {g[0] for g in errors_in(got)} >= {"field-removed"}


def test_in_a_dump_padding_may_hold_an_array_of_unknown_count() -> None:
    # sb16: irq, dma, hdma, port, ver (int32 each) -> VMSTATE_UNUSED(20)
    five = [(n, 4, False) for n in ("irq", "dma", "hdma", "port", "ver")]
    got = dump_found(_dump_fields([*five, ("in_index", 4, False)]), _dump_fields([("unused", 20, False), ("in_index", 4, False)]))
    assert ("field-retired", "info", BOTH, "unused") in got and not errors_in(got)
    # e1000e: bool eitr_intr_pending[5] (the dump prints one element: 1 byte) -> VMSTATE_UNUSED(5)
    got = dump_found(_dump_fields([("x", 1, False), ("y", 4, False)]), _dump_fields([("unused", 5, False), ("y", 4, False)]))
    assert ("field-retired", "warning", BOTH, "unused") in got and not errors_in(got)
    # 3 bytes of 2-byte elements cannot be
    got = dump_found(_dump_fields([("x", 2, False), ("y", 4, False)]), _dump_fields([("unused", 3, False), ("y", 4, False)]))
    assert errors_in(got)


def test_a_field_added_behind_an_exists_test_is_a_warning() -> None:
    # e1000e's core.timadj (VMSTATE_*_TEST, off for older machine types by a compat property)
    got = dump_found(_dump_fields([("a", 4, False)]), _dump_fields([("a", 4, False), ("timadj", 8, True)]))
    assert got == {("field-presence-depends", "warning", (OLD_TO_NEW,), "timadj"),
                   ("field-presence-depends", "warning", (NEW_TO_OLD,), "timadj")}
    got = dump_found(_dump_fields([("a", 4, False)]), _dump_fields([("a", 4, False), ("timadj", 8, False)]))
    assert ("field-added", "error", BOTH, "timadj") in got


def test_exists_tests_elsewhere_can_make_up_a_fields_bytes() -> None:
    # esp: ti_cmd (tested) renamed mig_ti_cmd, drq_state appended; the version the tests read is in the state
    old = _dump_fields([("a", 4, False), ("ti_cmd", 1, True), ("lun", 1, False)])
    new = _dump_fields([("a", 4, False), ("mig_ti_cmd", 1, True), ("lun", 1, False), ("drq_state", 1, False)])
    got = dump_found(old, new)
    assert ("field-presence-depends", "warning", (OLD_TO_NEW,), "drq_state") in got and not errors_in(got)
    # no tested field of 2 bytes: nothing can make up a 2-byte field
    new2 = _dump_fields([("a", 4, False), ("mig_ti_cmd", 1, True), ("lun", 1, False), ("drq_state", 2, False)])
    got = dump_found(old, new2)
    assert ("field-added", "error", BOTH, "drq_state") in got


def test_too_many_tested_fields_are_not_tried() -> None:
    from vmstate.compat.slot_rules import MAX_DEPENDS

    tested = [(f"t{i}", 1, True) for i in range(MAX_DEPENDS + 1)]
    got = dump_found(_dump_fields([*tested, ("a", 4, False)]), _dump_fields([*tested, ("a", 4, False), ("b", 1, False)]))
    assert ("field-added", "error", BOTH, "b") in got


def test_a_type_renamed_keeps_its_vmsd_and_is_compared() -> None:
    old = dump("x86_64-pc")
    new = copy.deepcopy(old)
    new["piix3-renamed"] = new.pop("pci-piix3")
    report = compare_sets(schema_from_json(old, "old"), schema_from_json(new, "new"))
    assert "pci-piix3 ~ piix3-renamed" in report.compared
    assert not [f for f in report.findings if "piix3" in f.device.lower()]
    # a type gone whose vmsd *name* another type keeps, with other fields, is still removed (serial-mm, isa-serial)
    del new["serial-mm"]
    report = compare_sets(schema_from_json(old, "old"), schema_from_json(new, "new"))
    assert ("serial-mm", "section-removed") in {(f.device, f.rule) for f in report.findings}
