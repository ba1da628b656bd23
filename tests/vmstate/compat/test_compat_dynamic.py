"""The dynamic check over the fixture corpus, the ledger that freezes fixtures, and recording."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from devices.virtio.sections import DEVICE_CLASSES
from tests.support.paths import ROOT
from vmstate.compat import (
    CheckReport,
    CompatError,
    FixtureError,
    ImmutableFixtureError,
    adopt_fixtures,
    check_fixtures,
    record_fixtures,
)
from vmstate.compat import fixtures as fixture_module
from vmstate.compat.fixtures import Outcome, Rewrite, golden_path, read_ledger

FIXTURES = ROOT / "compat_fixtures"
#: the device classes the corpus must cover (9p has no stream: QEMU blocks migrating a mounted share)
COVERED = sorted(set(DEVICE_CLASSES) - {"virtio-9p"})
#: devices seen only in paused VMs (compat_fixtures/generate.py), never driven by a guest
PAUSED_ONLY = {"virtio-input", "virtio-gpu", "virtio-iommu", "virtio-mem"}
OLD_VERSIONS = ["pc-2.2-virtio-net-v4", "pc-2.2-virtio-net-v7", "pc-2.2-virtio-net-v10", "pc-2.2-virtio-console-v2"]


@pytest.fixture(scope="module")
def corpus() -> CheckReport:
    return check_fixtures(FIXTURES)


def test_every_fixture_decodes_to_its_golden_and_is_written_back_identically(corpus: CheckReport) -> None:
    assert corpus.exit_code == 0, corpus.render()
    assert corpus.ledger_problems == ()
    assert all(r.decoded and r.rewritten for r in corpus.results)
    recorded = read_ledger(FIXTURES)
    assert len(recorded) >= 41 and set(recorded) <= {r.fixture for r in corpus.results}


def _goldens_by_device() -> dict[str, dict[str, list[str]]]:
    """For each device class: which fixtures show each case."""
    origins = {name: entry.origin for name, entry in read_ledger(FIXTURES).items()}
    cases: dict[str, dict[str, list[str]]] = {name: {} for name in COVERED}
    for fixture, origin in origins.items():
        golden = json.loads(golden_path(FIXTURES, FIXTURES / fixture).read_text())
        real = origin.startswith("qemu 7.2")
        for section in golden["sections"]:
            device = section["idstr"].rsplit("/", 1)[-1]
            if device not in cases or section.get("source") != "typed":
                continue
            subsections = section["fields"]["virtio"].get("subsections", {})
            found = cases[device]
            if real and "configuration" not in golden and not golden["footers"]:
                found.setdefault("2.2 layout (real QEMU, old machine type)", []).append(fixture)
            if real and golden.get("machine", "").endswith("-7.2"):
                found.setdefault("current QEMU 7.2", []).append(fixture)
            endian = "device_endian present" if "virtio/device_endian" in subsections else "device_endian absent"
            found.setdefault(endian, []).append(fixture)
            if section["version"] < DEVICE_CLASSES[device].version:
                found.setdefault("older version (our encoder)" if not real else "older version", []).append(fixture)
    return cases


def test_corpus_covers_every_case_for_every_virtio_device() -> None:
    cases = _goldens_by_device()
    wanted = {"2.2 layout (real QEMU, old machine type)", "current QEMU 7.2", "device_endian present",
              "device_endian absent"}
    for device in COVERED:
        # device_endian present needs a big-endian guest that drives the device: our booted guests drive the six
        need = wanted - {"device_endian present"} if device in PAUSED_ONLY else wanted
        assert need <= set(cases[device]), (device, sorted(cases[device]))
    # device_endian present comes from real QEMU: a big-endian aarch64 guest and a ppc64le guest
    assert {Path(f).name for f in cases["virtio-scsi"]["device_endian present"]} == {
        "virt-7.2-bare-be-mmio.mig.xz", "pseries-7.2-booted-ppc64le-legacy.mig.xz",
        "virt-7.2-bare-be-mmio.snapshot.json",  # a snapshot of the first
        "virt-10.0-bare-be-mmio.mig.xz"}  # the same program under QEMU 10.0
    assert len(cases["virtio-net"]["older version (our encoder)"]) == 3
    assert cases["virtio-console"]["older version (our encoder)"] == ["streams/pc-2.2-virtio-console-v2.mig"]


def test_older_device_versions_are_written_by_todays_code(corpus: CheckReport) -> None:
    results = {r.fixture: r for r in corpus.results}
    for name in OLD_VERSIONS:
        result = results[f"streams/{name}.mig"]
        assert result.decoded and result.rewritten


def test_what_the_writer_cannot_decide_is_kept_as_read_and_said() -> None:
    from vmstate import Subsection, field, state
    from vmstate.compat.qemu_format import _typed
    from vmstate.description import Record
    from vmstate.kinds import UINT8
    from vmstate.typed import description_of

    @state(name="demo", version=1, subsections=(Subsection("demo/extra", 1, needed=lambda _obj: False),))
    class Demo:
        a: int = field(UINT8)
        b: int = field(UINT8, subsection="demo/extra")

    notes: set[str] = set()
    read = Record(version=1, fields={"a": 1}, subsections={"demo/extra": Record(version=1, fields={"b": 2})})
    assert _typed(read, description_of(Demo), notes) == read
    assert [n for n in notes if n.startswith("demo/extra: in the stream, but Demo's `needed` test cannot tell")]


def test_the_balloon_writes_again_the_subsections_it_was_loaded_with(corpus: CheckReport) -> None:
    """QEMU sends page-poison on a negotiated feature the device part cannot see: the state remembers it."""
    booted = next(r for r in corpus.results if r.fixture == "streams/pc-7.2-booted-virtio-legacy.mig.xz")
    assert booted.rewritten and not any("virtio-balloon-device" in note for note in booted.notes)


# ------------------------------------------------------------------ ledger


@pytest.fixture
def small(tmp_path: Path) -> Path:
    """A fixture directory of two recorded corpus streams."""
    for name in ("virt-7.2-bare-le-mmio.mig.xz", "pc-2.2-virtio-net-v4.mig"):
        (tmp_path / "streams").mkdir(exist_ok=True)
        (tmp_path / "expected").mkdir(exist_ok=True)
        shutil.copy(FIXTURES / "streams" / name, tmp_path / "streams" / name)
        golden = name.split(".mig")[0] + ".json"
        shutil.copy(FIXTURES / "expected" / golden, tmp_path / "expected" / golden)
    assert len(adopt_fixtures(tmp_path, origin="test")) == 2
    return tmp_path


def test_a_recorded_directory_passes(small: Path) -> None:
    report = check_fixtures(small)
    assert report.exit_code == 0 and report.unrecorded == () and len(report.results) == 2


def test_a_rewritten_fixture_is_refused(small: Path) -> None:
    stream = small / "streams" / "pc-2.2-virtio-net-v4.mig"
    data = bytearray(stream.read_bytes())
    data[-10] ^= 0xFF
    stream.write_bytes(bytes(data))
    report = check_fixtures(small)
    assert report.exit_code == 2
    assert report.ledger_problems == (
        ("streams/pc-2.2-virtio-net-v4.mig: recorded fixture was rewritten (sha256 differs from the ledger; "
         "record a new fixture instead)"),)


def test_a_deleted_golden_is_refused(small: Path) -> None:
    (small / "expected" / "virt-7.2-bare-le-mmio.json").unlink()
    report = check_fixtures(small)
    assert report.exit_code == 2
    assert any("recorded golden was deleted" in p for p in report.ledger_problems)
    (result,) = [r for r in report.results if r.status == "error"]
    assert "no golden" in result.problems[0]


def test_a_golden_that_differs_is_incompatible(tmp_path: Path) -> None:
    (tmp_path / "streams").mkdir()
    (tmp_path / "expected").mkdir()
    shutil.copy(FIXTURES / "streams" / "virt-7.2-bare-le-mmio.mig.xz", tmp_path / "streams")
    golden = json.loads((FIXTURES / "expected" / "virt-7.2-bare-le-mmio.json").read_text())
    golden["machine"] = "virt-2.12"
    (tmp_path / "expected" / "virt-7.2-bare-le-mmio.json").write_text(json.dumps(golden))
    report = check_fixtures(tmp_path)
    assert report.exit_code == 1 and report.unrecorded == ("streams/virt-7.2-bare-le-mmio.mig.xz",)
    assert report.results[0].problems == (
        'decodes differently from its golden: machine: golden "virt-2.12", today "virt-7.2"',)


def test_an_unreadable_fixture_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "streams").mkdir()
    (tmp_path / "expected").mkdir()
    (tmp_path / "streams" / "junk.mig").write_bytes(b"QEVM\x00\x00\x00\x03garbage")
    (tmp_path / "expected" / "junk.json").write_text("{}")
    report = check_fixtures(tmp_path)
    assert report.exit_code == 2 and report.results[0].problems[0].startswith("unreadable: ")


# ------------------------------------------------------------------ recording


def test_recording_reproduces_the_older_version_fixtures(tmp_path: Path) -> None:
    source = FIXTURES / "streams" / "pc-2.2-virtio-all.mig"
    (entry,) = record_fixtures(tmp_path, [source], names=["net-v7.mig"], at_version={"virtio-net": 7},
                               origin="our encoder")
    assert (tmp_path / "streams" / "net-v7.mig").read_bytes() == (FIXTURES / "streams" / "pc-2.2-virtio-net-v7.mig").read_bytes()
    assert (tmp_path / "expected" / "net-v7.json").read_text() == (FIXTURES / "expected" / "pc-2.2-virtio-net-v7.json").read_text()
    assert read_ledger(tmp_path)["streams/net-v7.mig"] == entry and entry.origin == "our encoder"
    assert check_fixtures(tmp_path).exit_code == 0


def test_recording_never_overwrites_and_leaves_nothing_behind(tmp_path: Path) -> None:
    stream = FIXTURES / "streams" / "virt-7.2-bare-le-mmio.mig.xz"
    record_fixtures(tmp_path, [stream], origin="qemu 7.2")
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    with pytest.raises(ImmutableFixtureError, match="recorded fixtures are never rewritten"):
        record_fixtures(tmp_path, [FIXTURES / "streams" / "virt-7.2-bare-be-mmio.mig.xz"],
                        names=["virt-7.2-bare-le-mmio.mig.xz"])
    with pytest.raises(CompatError, match="cannot write it at v2"):
        record_fixtures(tmp_path, [FIXTURES / "streams" / "pc-2.2-virtio-all.mig"], names=["serial-v2.mig"],
                        at_version={"virtio-console": 2})
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


def test_recorded_goldens_have_the_shape_expected_py_writes(tmp_path: Path) -> None:
    record_fixtures(tmp_path, [FIXTURES / "streams" / "pc-7.2-virtio-rng-legacy.mig"])
    assert (tmp_path / "expected" / "pc-7.2-virtio-rng-legacy.json").read_bytes() == \
        (FIXTURES / "expected" / "pc-7.2-virtio-rng-legacy.json").read_bytes()


def test_adopting_needs_a_golden(tmp_path: Path) -> None:
    (tmp_path / "streams").mkdir()
    shutil.copy(FIXTURES / "streams" / "virt-7.2-bare-le-mmio.mig.xz", tmp_path / "streams")
    with pytest.raises(FixtureError, match="has no golden"):
        adopt_fixtures(tmp_path)


# ------------------------------------------------------------------ other fixture formats


class _Toy:
    """A stand-in for snapshot formats (streams/snapshots): a JSON file that is its own decoding."""

    name = "toy"
    suffixes = (".toy.json",)

    def run(self, path: Path, descriptions: Any) -> Outcome:
        data = path.read_bytes()
        return Outcome(decoding=json.loads(data), rewrite=Rewrite(identical=True, size=len(data)))


def test_a_registered_format_is_discovered_checked_and_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fixture_module, "_FORMATS", [])
    fixture_module.register_format(_Toy())
    snapshot = tmp_path / "snapshot.toy.json"
    snapshot.write_text('{"device": "virtio-net", "version": 11}')
    (entry,) = record_fixtures(tmp_path / "dir", [snapshot], names=["selfdesc/net.toy.json"])
    assert entry.golden == "expected/selfdesc/net.json"
    report = check_fixtures(tmp_path / "dir")
    assert [(r.fixture, r.format, r.status) for r in report.results] == [("streams/selfdesc/net.toy.json", "toy", "ok")]
