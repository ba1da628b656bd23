"""vmstate.compat.dump_lookup and ``--descriptions DUMP.json``: sections named from QEMU's -dump-vmstate.

The dump's blind spots (field_exists tests, self-sizing infos, arrays shown as
one element) must be refused, never guessed: each case here is a real QEMU
7.2 stream, or a hand-built one where QEMU has no such device.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from streams.qemu import (
    DeviceState,
    Eof,
    FileHeader,
    RawBody,
    SectionHeader,
    SectionType,
    StreamReader,
    check_stream,
    encode_record,
)
from tests.support.cli import run_script
from tests.support.paths import ROOT
from tests.support.qemu_driver import qmp_tools
from vmstate.compat.dump_lookup import DumpDescriptions

DUMPS = ROOT / "compat_fixtures" / "dump-vmstate"
PC_DUMP = DUMPS / "x86_64-pc-i440fx-2.2.json"


def _sections(data: bytes, lookup: DumpDescriptions) -> dict[str, DeviceState | RawBody]:
    out: dict[str, DeviceState | RawBody] = {}
    idstr = ""
    for record in StreamReader(io.BytesIO(data), descriptions=lookup):
        if isinstance(record, SectionHeader) and record.idstr is not None:
            idstr = record.idstr
        elif isinstance(record, (DeviceState, RawBody)):
            out.setdefault(idstr, record)
    return out


def test_a_dump_alone_names_the_simple_sections_and_refuses_the_rest(corpus_file) -> None:  # type: ignore[no-untyped-def]
    data = corpus_file("pc-2.2-virtio-all.mig").read_bytes()
    lookup = DumpDescriptions.load(PC_DUMP)  # no descriptions of ours at all
    sections = _sections(data, lookup)
    rtc = sections["mc146818rtc"]
    assert isinstance(rtc, DeviceState) and rtc.source == "dump" and rtc.size == 245
    assert rtc.description.name == "mc146818rtc@dump"
    assert len(rtc.record.fields["cmos_data"]) == 128
    # a field_exists test (PCIDevice's config: 256 or 4096 bytes?) is refused where it is met
    piix = sections["0000:00:01.0/PIIX3"]
    assert isinstance(piix, RawBody)
    assert "field_exists test on PCIDevice.config" in piix.reason and "dev.config" in piix.reason
    # vmmouse's queue is 1024 words; the dump shows one: the section does not end there, refused
    mouse = sections["vmmouse"]
    assert isinstance(mouse, RawBody)
    assert "no section boundary where the dump description 'vmmouse@dump' ends" in mouse.reason
    # whatever was refused, the stream still writes back byte for byte
    report = check_stream(io.BytesIO(data), io.BytesIO(data), descriptions=lookup)
    assert report.identical


def test_our_descriptions_come_first(corpus_file) -> None:  # type: ignore[no-untyped-def]
    from devices import DEFAULT_REGISTRY

    data = corpus_file("pc-2.2-virtio-all.mig").read_bytes()
    sections = _sections(data, DumpDescriptions.load(PC_DUMP, fallback=DEFAULT_REGISTRY))
    assert {s.source for s in sections.values() if isinstance(s, DeviceState)} == {"typed"}


def _hand_built_stream(body: bytes) -> bytes:
    records = [FileHeader(), SectionHeader(SectionType.FULL, 1, "fakedev", 0, 1), RawBody(body, ""), Eof()]
    return b"".join(encode_record(r) for r in records)


def _dump_of_fakedev(fields: list[dict[str, object]]) -> dict[str, object]:
    vmsd = {"name": "fakedev", "version_id": 1, "minimum_version_id": 1, "Fields": fields}
    return {"vmschkmachine": {"Name": "test"}, "fakedev": {"Name": "fakedev", "version_id": 1,
                                                            "minimum_version_id": 1, "Description": vmsd}}


def _field(name: str, size: int, exists: bool = False) -> dict[str, object]:
    return {"field": name, "version_id": 0, "field_exists": exists, "size": size}


def test_cli_refuses_a_self_sizing_info_and_decodes_a_plain_one(tmp_path: Path) -> None:
    stream = tmp_path / "fake.mig"
    stream.write_bytes(_hand_built_stream(bytes([0, 0, 0, 7, 0xAA, 0xBB, 0xCC])))  # body at 0x1d
    opaque = tmp_path / "opaque.json"
    opaque.write_text(json.dumps(_dump_of_fakedev([_field("count", 4), _field("blob", 0)])))
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps(_dump_of_fakedev([_field("count", 4), _field("tail", 3)])))

    refused = run_script("vmstate", "check", "--descriptions", opaque, stream)
    assert refused.returncode == 0, refused.stderr  # identical on re-encode; the body is kept raw
    assert "fakedev" in refused.stdout and " raw " in refused.stdout
    assert "kept raw: descriptions failed: at 0x21: blob: fakedev.blob is a custom VMStateInfo" in refused.stdout

    named = run_script("vmstate", "dump", "--json", "--descriptions", plain, stream)
    assert named.returncode == 0, named.stderr
    section = json.loads(named.stdout)["sections"][0]
    assert (section["source"], section["vmsd_name"], section["description"]) == ("dump", "fakedev", "fakedev@dump")
    assert section["fields"] == {"count": 7, "tail": "aabbcc"}


def test_cli_refuses_a_field_exists_field_and_a_file_that_is_no_dump(tmp_path: Path) -> None:
    stream = tmp_path / "fake.mig"
    stream.write_bytes(_hand_built_stream(bytes(4)))
    gated = tmp_path / "gated.json"
    gated.write_text(json.dumps(_dump_of_fakedev([_field("maybe", 4, exists=True)])))
    result = run_script("vmstate", "check", "--descriptions", gated, stream)
    assert result.returncode == 0
    assert "QEMU's dump shows a field_exists test on fakedev.maybe but not what it decides" in result.stdout

    schema = tmp_path / "ours.json"
    schema.write_text(run_script("vmstate", "describe", "timer").stdout)
    wrong = run_script("vmstate", "check", "--descriptions", schema, stream)
    assert wrong.returncode == 2
    assert wrong.stderr.count("\n") == 1 and "not QEMU -dump-vmstate output" in wrong.stderr


@pytest.mark.qemu
def test_cli_with_a_real_dump_and_a_real_stream_of_devices_we_do_not_describe(tmp_path: Path) -> None:
    tools = qmp_tools()
    stream = tmp_path / "watchdogs.mig"
    argv = ["qemu-system-x86_64", "-M", "pc-i440fx-2.0", "-S", "-nodefaults", "-display", "none", "-m", "16",
            "-device", "ib700", "-device", "i6300esb"]
    with tools.vm(argv, tmp_path) as qmp:
        tools.migrate_to(qmp, stream)

    without = run_script("vmstate", "check", stream)
    assert without.returncode == 0
    assert [line.split()[1] for line in without.stdout.splitlines() if "wdt" in line] == ["raw", "raw"]

    with_dump = run_script("vmstate", "check", "--descriptions", PC_DUMP, stream)
    assert with_dump.returncode == 0, with_dump.stderr
    lines = with_dump.stdout.splitlines()
    ib700 = next(line for line in lines if "ib700_wdt" in line)
    assert ib700.split()[1:4] == ["dump", "named", "8"]
    esb = lines.index(next(line for line in lines if "i6300esb_wdt" in line))
    assert lines[esb].split()[1] == "raw"
    assert "field_exists test on PCIDevice.config" in lines[esb + 1]
