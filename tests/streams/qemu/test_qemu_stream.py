"""QEMU binary codec over real streams: byte-exact round trips and agreement with vmdesc."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from devices import DEFAULT_REGISTRY
from streams.files import open_stream
from streams.qemu import (
    Configuration,
    DeviceState,
    Eof,
    HtabHeader,
    RawBody,
    SectionFooter,
    SectionHeader,
    SectionType,
    StreamReader,
    VmDescription,
    check_stream,
)
from tests.support.streams import stream_bytes
from vmstate.vmdesc import description_from_vmdesc, vmdesc_body_size, vmdesc_from_description


def test_stream_reencodes_byte_for_byte(stream_path: Path) -> None:
    with open_stream(stream_path) as source, open_stream(stream_path) as original:
        report = check_stream(source, original, descriptions=DEFAULT_REGISTRY)
    assert report.identical, f"first difference at {report.first_difference:#x}"
    assert report.size == len(stream_bytes(stream_path))


def _without_vmdesc_it_is_the_old_layout(stream_path: Path) -> None:
    """A stream without a vmdesc must be one QEMU writes for machine types before 2.3: no
    configuration section, no section footers, and its last byte the EOF marker."""
    records = list(StreamReader(open_stream(stream_path)))
    assert not any(isinstance(r, (Configuration, SectionFooter, VmDescription)) for r in records)
    assert isinstance(records[-1], Eof) and stream_bytes(stream_path)[-1] == 0


def test_vmdesc_decoding_agrees_with_qemus_vmdesc(stream_path: Path) -> None:
    reader = StreamReader(open_stream(stream_path))
    if reader.vmdesc is None:
        _without_vmdesc_it_is_the_old_layout(stream_path)  # nothing of QEMU's to compare with
        return
    entries = list(reader.vmdesc["devices"])
    states = [r for r in reader if isinstance(r, DeviceState)]
    assert [(s.idstr, s.instance_id) for s in states] == [(e["name"], e["instance_id"]) for e in entries]
    for state, entry in zip(states, entries):
        assert state.source == "vmdesc"
        # a save_state section (e.g. slirp) has no vmsd name: it goes by its section name
        assert state.description.name == entry.get("vmsd_name", entry["name"])
        # the decoded field layout is QEMU's own, and sizes add up to what was consumed
        keys = [k for k in ("vmsd_name", "version", "fields", "subsections") if k in entry]
        assert vmdesc_from_description(state.description) == {k: _numbered(entry[k]) for k in keys}
        assert vmdesc_body_size(state.description) == state.size


def test_typed_descriptions_agree_with_vmdesc(stream_path: Path) -> None:
    reader = StreamReader(open_stream(stream_path), descriptions=DEFAULT_REGISTRY)
    if reader.vmdesc is None:
        _without_vmdesc_it_is_the_old_layout(stream_path)  # nothing of QEMU's to compare with
        return
    entries = {(e["name"], e["instance_id"]): e for e in reader.vmdesc["devices"]}
    typed = [r for r in reader if isinstance(r, DeviceState) and r.source == "typed"]
    assert typed, "no section decoded through a state class of ours"
    for state in typed:
        generic = description_from_vmdesc(entries[(state.idstr, state.instance_id)])
        assert _as_seven_two_names(state.description.name, [f.name for f in generic.fields]) == _sent_fields(state)
        assert vmdesc_body_size(generic) == state.size


#: QEMU 10.0 renamed these fields in its vmdesc and kept their bytes (names are not on the wire; our
#: descriptions keep 7.2's names so 7.2's goldens stay): hw/timer/hpet.c's num_timers_save, the ppc
#: cpu's env.reserve_addr made VMSTATE_UNUSED (it moved to cpu/reservation), and globalstate's
#: 100-byte runstate split into runstate[32], two vm_was_suspended flags and 66 unused bytes.
_TEN_RENAMES = {
    "hpet": {"num_timers_save": ["num_timers"]},
    "globalstate": {"has_vm_was_suspended": [], "vm_was_suspended": [], "unused": []},
    "cpu@ppc64": {"unused[0]": ["unused"], "unused[1]": ["env.reserve_addr"]},
}


def _as_seven_two_names(description: str, names: list[str]) -> list[str]:
    """QEMU's vmdesc field names as 7.2 wrote them (the same for a 7.2 stream)."""
    renames = _TEN_RENAMES.get("cpu@ppc64" if description.startswith("cpu@ppc64") else description, {})
    return [new for name in names for new in renames.get(name, [name])]


def _numbered(value: Any) -> Any:
    """A vmdesc value with every array element numbered, as QEMU 7.2 writes it.

    QEMU 10.0 leaves out the ``"index"`` of the last element of an array it lists element by
    element (vmstate/vmdesc.py reads both); our vmdesc export numbers every element.
    """
    if isinstance(value, dict):
        return {k: _numbered(v) for k, v in value.items()}
    if not isinstance(value, list):
        return value
    out = [_numbered(v) for v in value]
    for i in range(1, len(out)):
        here, before = out[i], out[i - 1]
        if (isinstance(here, dict) and isinstance(before, dict) and "index" not in here and "index" in before
                and here.get("name") == before.get("name")):
            out[i] = {**here, "index": before["index"] + 1}
    return out


def _sent_fields(state: DeviceState) -> list[str]:
    """Our fields that were on the wire, as QEMU's vmdesc lists them.

    QEMU lists only the fields it wrote: none whose ``_TEST`` failed, and no
    variable array or buffer that came out empty (vmstate.c writes no entry
    for zero elements).
    """
    out = []
    for f in state.description.fields:
        value = state.record.fields.get(f.name)
        kind = f.kind
        variable = getattr(kind, "count_from", None) is not None or getattr(kind, "length_from", None) is not None
        if f.name in state.record.fields and not (variable and len(value) == 0):
            out.append(f.name)
    return out


def _boundaries(data: bytes) -> list[tuple[str | None, int, str]]:
    out = []
    for record in StreamReader(io.BytesIO(data)):
        if isinstance(record, SectionHeader):
            out.append((record.idstr, record.section_id, record.kind.name))
        elif isinstance(record, (DeviceState, RawBody)):
            out.append(("body", len(record.data) if isinstance(record, RawBody) else record.size, type(record).__name__))
    return out


@pytest.mark.parametrize("name", ["pc-2.2-vmdesc-virtio-all.mig", "pc-7.2-virtio-all-legacy.mig", "virt-7.2-virtio-mmio-all.mig", "pseries-7.2-virtio-all-legacy.mig"])
def test_scan_finds_the_same_section_ends_as_vmdesc(corpus_file, name: str) -> None:  # type: ignore[no-untyped-def]
    data = corpus_file(name).read_bytes()
    reader = StreamReader(io.BytesIO(data))
    records = list(reader)
    eof_end = len(data) - len(next(r for r in records if isinstance(r, VmDescription)).raw) - 5
    stripped = data[:eof_end]  # the stream without its vmdesc trailer
    with_vmdesc = [(b[0], b[1]) for b in _boundaries(data)]
    scanned = _boundaries(stripped)
    assert [(b[0], b[1]) for b in scanned] == with_vmdesc
    assert any(kind == "RawBody" for _, _, kind in scanned)


def test_old_layout_has_no_configuration_footers_or_vmdesc(corpus_file) -> None:  # type: ignore[no-untyped-def]
    records = list(StreamReader(open(corpus_file("pc-2.2-virtio-all.mig"), "rb"), descriptions=DEFAULT_REGISTRY))
    kinds = {type(r).__name__ for r in records}
    assert "Configuration" not in kinds and "SectionFooter" not in kinds and "VmDescription" not in kinds
    typed = {r.idstr for r in records if isinstance(r, DeviceState)}
    assert {"timer", "cpu_common", "globalstate"} <= typed


def test_aarch64_configuration_carries_target_page_bits(corpus_file) -> None:  # type: ignore[no-untyped-def]
    reader = StreamReader(open(corpus_file("virt-7.2-virtio-mmio-all.mig"), "rb"))
    config = next(r for r in reader if isinstance(r, Configuration))
    assert config.machine == "virt-7.2"
    assert config.record.subsections["configuration/target-page-bits"].fields["target_page_bits"] == 12
    assert reader.page_size == 4096


def test_pseries_interleaves_htab_with_ram(corpus_file) -> None:  # type: ignore[no-untyped-def]
    headers = [r for r in StreamReader(open(corpus_file("pseries-7.2-virtio-all-legacy.mig"), "rb")) if isinstance(r, (SectionHeader, HtabHeader))]
    iterative = [(h.kind.name, h.section_id) for h in headers if isinstance(h, SectionHeader) and h.kind != SectionType.FULL]
    ram, htab = iterative[0][1], iterative[1][1]
    assert iterative == [("START", ram), ("START", htab), ("PART", ram), ("PART", htab), ("END", ram), ("END", htab)]
    htab_headers = [h.value for h in headers if isinstance(h, HtabHeader)]
    assert htab_headers[0] > 0 and htab_headers[1:] == [0, 0]


def test_vmdesc_trailer_is_kept_exactly(corpus_file) -> None:  # type: ignore[no-untyped-def]
    data = corpus_file("pc-7.2-virtio-scsi-modern.mig").read_bytes()
    trailer = next(r for r in StreamReader(io.BytesIO(data)) if isinstance(r, VmDescription))
    assert data.endswith(trailer.raw)
    assert json.loads(trailer.raw)["page_size"] == 4096


def test_non_seekable_input_is_read_too(corpus_file) -> None:  # type: ignore[no-untyped-def]
    data = corpus_file("pc-2.2-virtio-all.mig").read_bytes()

    class Pipe(io.RawIOBase):
        def __init__(self) -> None:
            self._inner = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def seekable(self) -> bool:
            return False

        def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
            chunk = self._inner.read(min(len(buffer), 777))
            buffer[: len(chunk)] = chunk
            return len(chunk)

    records = list(StreamReader(io.BufferedReader(Pipe()), descriptions=DEFAULT_REGISTRY))
    assert sum(1 for r in records if isinstance(r, SectionHeader)) == 38
