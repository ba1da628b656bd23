"""Pre-flight predictions held against what real QEMU 7.2 and 10.0 did (compat_fixtures/preflight/).

The corpus (``compat_fixtures/preflight_cases.py``) records, for each stream and
destination, whether QEMU loaded it (``query-migrate`` completed) and the lines
it printed when it did not.  The prediction must agree on every case: loads
where QEMU loaded, and QEMU's own first message where it refused.
"""

from __future__ import annotations

import io
import json
import lzma
import re
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from compat_fixtures.preflight_cases import DESTINATIONS, X86, edited
from compat_fixtures.qemu_versions import qemu
from devices import DEFAULT_REGISTRY
from tests.support.cli import run_script as run_cli
from tests.support.paths import ROOT
from vmstate.preflight import Profile, ProfileError, predict
from vmstate.preflight.learn import learn_profile, parse_ramblocks

CORPUS = ROOT / "compat_fixtures" / "preflight"
CASES: list[dict[str, Any]] = json.loads((CORPUS / "cases.json").read_text(encoding="utf-8"))["cases"]


@cache
def stream_bytes(case_name: str) -> bytes:
    case = next(c for c in CASES if c["name"] == case_name)
    data = lzma.decompress((CORPUS / case["stream"]).read_bytes())
    edit = case["source"]["edit"]
    return data if edit is None else edited(data, edit)


def profile_of(destination: str) -> Profile:
    return Profile.load(CORPUS / "profiles" / f"{destination}.json")


def test_the_corpus_has_both_outcomes_and_both_versions() -> None:
    statuses = {c["status"] for c in CASES}
    assert statuses == {"completed", "failed"}
    assert {c["source"]["qemu"] for c in CASES} == {"7.2", "10.0"}
    assert {c["destination_argv"][0] for c in CASES} == {"qemu-7.2/qemu-system-x86_64", "qemu-10.0/qemu-system-x86_64"}


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_prediction_agrees_with_what_qemu_did(case: dict[str, Any]) -> None:
    data = stream_bytes(case["name"])
    import hashlib

    assert hashlib.sha256(data).hexdigest() == case["stream_sha256"]
    verdict = predict(io.BytesIO(data), profile_of(case["destination"]), descriptions=DEFAULT_REGISTRY)
    if case["status"] == "completed":
        assert verdict.refusals == (), "a false alarm: QEMU loaded it"
    else:
        assert verdict.refusals, "a miss: QEMU refused it"
        assert list(verdict.refusals[0].qemu_lines) == case["qemu_lines"]
    assert verdict.sections_checked > 20 and verdict.ram_blocks_checked > 3


def test_every_refusal_names_an_offset_inside_the_stream_and_a_fix() -> None:
    for case in CASES:
        data = stream_bytes(case["name"])
        for refusal in predict(io.BytesIO(data), profile_of(case["destination"]), descriptions=DEFAULT_REGISTRY).refusals:
            assert 0 < refusal.offset < len(data) and refusal.fix and refusal.section


def test_a_section_record_is_where_the_refusal_points() -> None:
    """The unknown-section refusal's offset is that section's header: type byte, id, then the idstr."""
    name = "pc-7.2-net-rng--into--7.2-pc-7.2-net"
    data = stream_bytes(name)
    refusal = predict(io.BytesIO(data), profile_of("7.2-pc-7.2-net"), descriptions=DEFAULT_REGISTRY).refusals[0]
    idstr = refusal.section.encode()
    assert data[refusal.offset + 5] == len(idstr) and data[refusal.offset + 6:refusal.offset + 6 + len(idstr)] == idstr


@pytest.mark.qemu
@pytest.mark.parametrize("destination", [d for d in DESTINATIONS if d.name in
                                         ("7.2-pc-7.2-net-rng", "10.0-pc-10.0-net-rng", "7.2-pc-7.2-rng")],
                         ids=lambda d: d.name)
def test_a_profile_learned_again_from_qemu_is_the_committed_one(destination: Any) -> None:
    learned = learn_profile(qemu(destination.version).command(X86), ["-M", destination.machine, *destination.args])
    committed = profile_of(destination.name)
    assert learned.machine == committed.machine
    assert learned.sections == committed.sections
    assert learned.ram == committed.ram
    assert learned.vmsds == committed.vmsds
    assert learned.virtio == committed.virtio and learned.virtio  # offered features, vectors, vnet header
    assert learned.qemu.startswith(f"QEMU {destination.version}.")


@pytest.mark.qemu
def test_cli_runs_the_destination_itself_and_prints_qemus_words(tmp_path: Path) -> None:
    stream = tmp_path / "a.mig"
    stream.write_bytes(stream_bytes("pc-7.2-net-rng--into--10.0-pc-10.0-net-rng"))
    ten = f"{sys.executable} -m compat_fixtures.qemu_versions run 10.0 {X86}"  # a wrapper, split like a shell
    saved = tmp_path / "profile.json"
    result = run_cli("vmstate", "preflight", stream, "--qemu", ten, "--save-profile", saved, "--",
                     "-M", "pc-i440fx-10.0", "-nodefaults", "-m", "16", "-device", "virtio-net-pci",
                     "-device", "virtio-rng-pci")
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert "will be refused by QEMU 10.0." in lines[0]
    assert lines[1] == "qemu-system-x86_64: Machine type received is 'pc-i440fx-7.2' and local is 'pc-i440fx-10.0'"
    assert "fix: start the destination with -M pc-i440fx-7.2" in result.stdout
    again = run_cli("vmstate", "preflight", stream, "--profile", saved)
    assert (again.returncode, again.stdout) == (1, result.stdout)
    as_json = json.loads(run_cli("vmstate", "preflight", stream, "--profile", saved, "--json").stdout)
    assert as_json["loads"] is False and as_json["refusals"][0]["rule"] == "machine-type"


def test_cli_says_loads_and_exits_0() -> None:
    case = next(c for c in CASES if c["status"] == "completed")
    path = CORPUS / case["stream"]
    result = run_cli("vmstate", "preflight", path, "--profile", CORPUS / "profiles" / f"{case['destination']}.json")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].endswith("machine pc-i440fx-7.2") and ": loads on QEMU" in result.stdout
    assert "not checked: minimum version and subsections of" in result.stdout  # said, not hidden


def test_a_destination_that_does_not_run_is_trouble(tmp_path: Path) -> None:
    result = run_cli("vmstate", "preflight", CORPUS / CASES[0]["stream"], "--qemu", str(tmp_path / "no-such-qemu"))
    assert result.returncode == 2
    assert result.stderr.startswith("vmstate preflight: error: cannot run the destination")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("text", "problem"), [
    ("[]", "is not an object"),
    ('{"format": "x"}', "not a preflight profile"),
    ('{"format": "vmstate-forge preflight profile", "format_version": 1, "qemu": "q", "argv": [], "machine": null,'
     ' "sections": [{"idstr": "a", "instance_id": -1, "version_id": 1}], "ram": [], "vmsds": {}}',
     "sections[0].instance_id: is not an integer"),
    ('{"format": "vmstate-forge preflight profile", "format_version": 1, "qemu": "q", "argv": [], "machine": null,'
     ' "sections": [], "ram": [], "vmsds": {"a": {"name": "a", "version": 1, "minimum_version": 0, "subsections": '
     + '{"b": ' * 300 + "{}" + "}" * 300 + "}}}", "nests deeper"),
])
def test_a_bad_profile_is_one_line_naming_where(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "p.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ProfileError, match=re.escape(problem)):
        Profile.load(path)
    result = run_cli("vmstate", "preflight", CORPUS / CASES[0]["stream"], "--profile", path)
    assert result.returncode == 2 and problem in result.stderr and "Traceback" not in result.stderr
    assert str(path) in result.stderr


def test_info_ramblock_of_both_versions_parses() -> None:
    seven = ("              Block Name    PSize              Offset               Used              Total\n"
             "                  pc.ram    4 KiB  0x0000000000000000 0x0000000001000000 0x0000000001000000\n"
             "    /rom@etc/acpi/tables    4 KiB  0x00000000010c0000 0x0000000000020000 0x0000000000200000\n")
    ten = ("              Block Name    PSize              Offset               Used              Total"
           "                HVA  RO\r\n"
           "                  pc.ram    4 KiB  0x0000000000000000 0x0000000001000000 0x0000000001000000"
           " 0x00007f78fc200000  rw\r\n"
           "0000:00:02.0/virtio-net-pci.rom    4 KiB  0x0000000001080000 0x0000000000040000 0x0000000000040000"
           " 0x00007f78b7000000  ro\r\n")
    assert [(r.name, r.used_length, r.max_length, r.resizeable) for r in parse_ramblocks(seven)] == [
        ("pc.ram", 0x1000000, 0x1000000, False), ("/rom@etc/acpi/tables", 0x20000, 0x200000, True)]
    assert [(r.name, r.resizeable) for r in parse_ramblocks(ten)] == [
        ("pc.ram", False), ("0000:00:02.0/virtio-net-pci.rom", False)]


def test_feature_names_decode_to_the_bits_qemu_refuses_with() -> None:
    """QEMU 7.2 printed "Allowed features: 0x10179bf8064" for this virtio-net: our table gives the same bits."""
    from vmstate.preflight.feature_names import feature_mask

    offered = ["VIRTIO_RING_F_EVENT_IDX", "VIRTIO_RING_F_INDIRECT_DESC", "VIRTIO_F_VERSION_1", "VIRTIO_F_ANY_LAYOUT",
               "VIRTIO_F_NOTIFY_ON_EMPTY", "VIRTIO_F_RING_RESET", "VHOST_USER_F_PROTOCOL_FEATURES",
               "VIRTIO_NET_F_GSO", "VIRTIO_NET_F_CTRL_MAC_ADDR", "VIRTIO_NET_F_GUEST_ANNOUNCE",
               "VIRTIO_NET_F_CTRL_RX_EXTRA", "VIRTIO_NET_F_CTRL_VLAN", "VIRTIO_NET_F_CTRL_RX", "VIRTIO_NET_F_CTRL_VQ",
               "VIRTIO_NET_F_STATUS", "VIRTIO_NET_F_MRG_RXBUF", "VIRTIO_NET_F_MAC", "VIRTIO_NET_F_CTRL_GUEST_OFFLOADS"]
    assert feature_mask(f"{name}: some words" for name in offered) == 0x10179BF8064
    assert feature_mask(["VIRTIO_NET_F_MAC: x", "VIRTIO_FUTURE_F_THING: not known"]) is None
