"""Seeded breakages: really mutate a description, then both checks must catch it.

Each seed changes one of today's descriptions (``attrs.evolve``) the way a
careless patch would.  The static check compares today's schema with the
mutated one and must report the breakage with the right rule, severity,
direction and field path, on both transports; the dynamic check, run with
the mutated descriptions, must fail on the committed fixture that exposes it
(which passes with today's descriptions: test_compat_dynamic checks them all).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import pytest

from devices import DEFAULT_REGISTRY
from devices.virtio.balloon import VIRTIO_BALLOON, VirtIOBalloon
from devices.virtio.blk import VIRTIO_BLK
from devices.virtio.common import virtio_description
from devices.virtio.net import VIRTIO_NET, VirtIONet
from devices.virtio.save_load import VirtioCodec, VirtioDeviceClass, virtio_field
from devices.virtio.serial import VIRTIO_SERIAL
from devices.virtio.transport import MMIO, PCI, transport_for_idstr
from tests.support.paths import ROOT
from vmstate.compat import (
    BOTH,
    NEW_TO_OLD,
    OLD_TO_NEW,
    compare_sets,
    described,
    export_schema,
    schema_from_json,
)
from vmstate.compat.dynamic import check_fixtures
from vmstate.description import Custom, Description, Field
from vmstate.kinds import UINT8, UINT32
from vmstate.lookup import TYPED_SOURCE, DescriptionLookup
from vmstate.typed import description_of

FIXTURES = ROOT / "compat_fixtures"


def virtio_sections(device_class: VirtioDeviceClass,
                    virtio: Callable[[str], Description] | None = None) -> dict[str, Description]:
    """A device class's sections on pci and mmio, keyed as ``described()`` keys them."""
    out = {}
    for transport in (PCI, MMIO):
        section = virtio_field(device_class, transport)
        if virtio is not None:
            codec = VirtioCodec(device_class, transport)
            codec._virtio = virtio(transport.name)  # the codec builds the `virtio` vmsd itself: swap in the mutation
            section = attrs.evolve(section, fields=(Field(name="virtio", kind=Custom(codec=codec, type_name="virtio")),))
        out[f"{device_class.savevm_name}@{transport.name}"] = section
    return out


def part(device_class: Any, cls: type, mutate: Callable[[Description], Description], **changes: Any) -> Any:
    """A described device class whose own part is ``mutate``d (and whose class fields are ``changes``d)."""
    description = mutate(description_of(cls))
    return attrs.evolve(device_class, description=lambda _config: description, **changes)


def fields(description: Description, edit: Callable[[list[Field]], list[Field]]) -> Description:
    return attrs.evolve(description, fields=tuple(edit(list(description.fields))))


def subsections(description: Description, edit: Callable[[list[Description]], list[Description]]) -> Description:
    return attrs.evolve(description, subsections=tuple(edit(list(description.subsections))))


def swapped(items: list[Any], a: int, b: int) -> list[Any]:
    items[a], items[b] = items[b], items[a]
    return items


class _Replaced:
    """The default registry with some sections' descriptions replaced (a ``vmstate.lookup.DescriptionLookup``)."""

    def __init__(self, replaced: dict[str, Description]) -> None:
        self._replaced = replaced

    @staticmethod
    def _key_of(idstr: str) -> str:
        name = idstr.rsplit("/", 1)[-1]
        transport = transport_for_idstr(idstr)
        return f"{name}@{transport.name}" if transport is not None else name

    def __call__(self, idstr: str, instance_id: int, version: int) -> Description | None:
        found = self.candidates(idstr, instance_id, version)
        return found[0] if found else None

    def candidates(self, idstr: str, instance_id: int, version: int) -> list[Description]:
        # the registry's variants (piix4_pm, piix4_pm@2.x...) for the sections not replaced
        found = self._replaced.get(self._key_of(idstr))
        if found is None:
            return DEFAULT_REGISTRY.candidates(idstr, instance_id, version)
        return [found] if found.minimum_version <= version <= found.version else []

    def source_of(self, description: Description) -> str:
        return TYPED_SOURCE


def lookup_with(replaced: dict[str, Description]) -> DescriptionLookup:
    """The default registry with some sections' descriptions replaced (keys as in ``described()``)."""
    return _Replaced(replaced)


@attrs.frozen
class Seed:
    name: str
    device: str
    sections: dict[str, Description]
    #: (rule, severity, directions, path) the static check must report on both transports
    expected: tuple[str, str, tuple[str, ...], str]
    #: the committed fixture that exposes it, and what the dynamic check says
    fixture: str
    dynamic: str


NET_PART = "virtio.{virtio-net-device}"
SEEDS = [
    Seed("drop a field", "virtio-net",
         virtio_sections(part(VIRTIO_NET, VirtIONet, lambda d: fields(d, lambda f: [x for x in f if x.name != "has_ufo"]))),
         ("field-removed", "error", BOTH, f"{NET_PART}.has_ufo"),
         "pc-7.2-virtio-net-legacy.mig", "decoded as vmdesc, the golden as typed"),
    Seed("resize a field", "virtio-net",
         virtio_sections(part(VIRTIO_NET, VirtIONet, lambda d: fields(
             d, lambda f: [attrs.evolve(x, kind=UINT32) if x.name == "status" else x for x in f]))),
         ("field-resized", "error", BOTH, f"{NET_PART}.status"),
         "q35-7.2-virtio-net-modern.mig", "decoded as vmdesc, the golden as typed"),
    Seed("add an ungated field", "virtio-net",
         virtio_sections(part(VIRTIO_NET, VirtIONet, lambda d: fields(d, lambda f: [*f, Field(name="rsc", kind=UINT8)]))),
         ("field-added", "error", BOTH, f"{NET_PART}.rsc"),
         "pc-7.2-virtio-net-legacy.mig", "decoded as vmdesc, the golden as typed"),
    Seed("drop a balloon field", "virtio-balloon",
         virtio_sections(part(VIRTIO_BALLOON, VirtIOBalloon, lambda d: fields(d, lambda f: f[1:]))),
         ("field-removed", "error", BOTH, "virtio.{virtio-balloon-device}.num_pages"),
         "pc-7.2-virtio-balloon-modern.mig", "decoded as vmdesc, the golden as typed"),
    Seed("raise the minimum version", "virtio-net",
         virtio_sections(attrs.evolve(VIRTIO_NET, minimum_version=11)),
         ("minimum-version-raised", "warning", (OLD_TO_NEW,), "(section)"),
         "pc-2.2-virtio-net-v10.mig", "decoded as raw, the golden as typed"),
    Seed("raise serial's minimum version", "virtio-console",
         virtio_sections(attrs.evolve(VIRTIO_SERIAL, minimum_version=3)),
         ("minimum-version-raised", "warning", (OLD_TO_NEW,), "(section)"),
         "pc-2.2-virtio-console-v2.mig", "decoded as raw, the golden as typed"),
    Seed("reorder subsections", "virtio-net",
         virtio_sections(VIRTIO_NET, lambda t: subsections(virtio_description(t), lambda s: swapped(s, 0, 1))),
         ("subsections-reordered", "warning", BOTH, "virtio.{virtio}.{subsections}"),
         "virt-7.2-bare-be-mmio.mig.xz", "today's code writes it differently: first difference at byte"),
    Seed("rename a subsection", "virtio-blk",
         virtio_sections(VIRTIO_BLK, lambda t: subsections(virtio_description(t), lambda s: [
                             attrs.evolve(s[0], name="virtio/endianness"), *s[1:]])),
         ("subsection-renamed", "error", BOTH, "virtio.{virtio}.{virtio/device_endian}"),
         "virt-7.2-bare-be-mmio.mig.xz", "unknown subsection 'virtio/device_endian'"),
]


@pytest.fixture(scope="module")
def today() -> Any:
    return schema_from_json(export_schema(), "today")


@pytest.mark.parametrize("seed", SEEDS, ids=[s.name for s in SEEDS])
def test_static_check_reports_the_breakage(seed: Seed, today: Any) -> None:
    report = compare_sets(today, schema_from_json(export_schema({**described(), **seed.sections}), "mutated"))
    found: dict[tuple[str, ...], Any] = {
        (f.device, f.rule, f.severity, ",".join(f.directions), f.path): f for f in report.findings}
    rule, severity, directions, path = seed.expected
    for transport in ("pci", "mmio"):
        finding = found.get((f"{seed.device}@{transport}", rule, severity, ",".join(directions), path))
        assert finding is not None, report.render()
        assert finding.reason and finding.old_versions and finding.new_versions
    # only that device changed: nothing is reported anywhere else
    assert {f.device for f in report.findings} == {f"{seed.device}@pci", f"{seed.device}@mmio"}
    assert report.exit_code() == 1


@pytest.mark.parametrize("seed", SEEDS, ids=[s.name for s in SEEDS])
def test_dynamic_check_fails_on_the_fixture_that_exposes_it(seed: Seed) -> None:
    report = check_fixtures(FIXTURES, descriptions=lookup_with(seed.sections), only=[seed.fixture])
    (result,) = report.results
    assert result.status == "incompatible" and report.exit_code == 1
    assert any(seed.dynamic in problem for problem in result.problems), result.problems


def _v12(description: Description) -> Description:
    return attrs.evolve(description, version=12,
                        fields=(*description.fields, Field(name="rsc", kind=UINT8, since_version=12)))


def test_a_gated_field_with_a_version_bump_is_compatible_forward_only(today: Any) -> None:
    sections = virtio_sections(part(VIRTIO_NET, VirtIONet, _v12, version=12))
    report = compare_sets(today, schema_from_json(export_schema({**described(), **sections}), "v12"))
    rules = {(f.device, f.rule, f.severity, f.directions) for f in report.findings}
    assert ("virtio-net@pci", "field-added-gated", "info", (OLD_TO_NEW,)) in rules
    assert ("virtio-net@pci", "version-raised", "error", (NEW_TO_OLD,)) in rules
    assert not [f for f in report.findings if f.rule == "field-added"]
    # every old fixture still loads and is written back identically by the v12 code
    old = check_fixtures(FIXTURES, descriptions=lookup_with(sections), only=["virtio-net-v4", "pc-7.2-virtio-net-legacy"])
    assert old.exit_code == 0, old.render()


def test_a_needed_subsection_made_mandatory_breaks_old_destinations(today: Any) -> None:
    sections = virtio_sections(part(VIRTIO_BALLOON, VirtIOBalloon, lambda d: subsections(
        d, lambda s: [s[0], attrs.evolve(s[1], needed=None)])))
    report = compare_sets(today, schema_from_json(export_schema({**described(), **sections}), "mandatory"))
    found = [f for f in report.findings if f.rule == "needed-made-mandatory"]
    assert [f.device for f in found] == ["virtio-balloon@mmio", "virtio-balloon@pci"]
    finding = found[0]
    assert finding.severity == "warning" and finding.directions == (NEW_TO_OLD,)
    assert finding.path == "virtio.{virtio-balloon-device}.{virtio-balloon-device/page-poison}"
    assert "_page_poison" in finding.reason


def test_human_output_names_device_path_versions_and_why(today: Any) -> None:
    report = compare_sets(today, schema_from_json(export_schema({**described(), **SEEDS[0].sections}), "mutated"))
    text = report.render()
    assert "ERROR   old->new, new->old   virtio-net@pci: virtio.{virtio-net-device}.has_ufo  (v2..11 -> v2..11)" in text
    assert "field-removed: `has_ufo` (uint8, 1 byte) was removed without a version bump" in text
    assert text.endswith("result: incompatible (2 errors, 0 warnings, 0 infos)")

