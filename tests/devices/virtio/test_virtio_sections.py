"""Every virtio section of a real stream decodes into named fields through our virtio save/load."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from devices import DEFAULT_REGISTRY
from devices.virtio import DEVICE_CLASSES
from devices.virtio.pci import msix_vectors
from devices.virtio.transport import transport_for_idstr
from streams.files import open_stream
from streams.qemu import StreamReader
from streams.qemu.check import check_stream
from streams.records import DeviceState
from tests.support.paths import ROOT
from tests.support.streams import WITHOUT_VIRTIO
from vmstate.description import Record
from vmstate.engine import decode
from vmstate.errors import MalformedError, TruncatedError
from vmstate.wire import ByteReader


def _expects_virtio(path: Path) -> bool:
    """Every stream of ours has virtio devices (but those made for machine sections); one from $VMSTATE_STREAM_DIRS need not."""
    return path.resolve().is_relative_to(ROOT) and path.name not in WITHOUT_VIRTIO


def _virtio_states(path: Path) -> list[DeviceState]:
    with open_stream(path) as source:
        return [
            r
            for r in StreamReader(source, descriptions=DEFAULT_REGISTRY)
            if isinstance(r, DeviceState) and r.idstr.rsplit("/", 1)[-1] in DEVICE_CLASSES
        ]


def test_every_virtio_section_is_named_and_reencodes(stream_path: Path) -> None:
    with open_stream(stream_path) as source, open_stream(stream_path) as original:
        report = check_stream(source, original, descriptions=DEFAULT_REGISTRY)
    assert report.identical
    virtio = [s for s in report.sections if s.idstr and s.idstr.rsplit("/", 1)[-1] in DEVICE_CLASSES]
    assert virtio or not _expects_virtio(stream_path), "no virtio section found"
    for section in virtio:
        assert section.source == "typed", section.idstr
        assert section.raw_bytes == 0, section.idstr
        assert section.named_bytes > 0


def test_virtio_layout_matches_the_transport(stream_path: Path) -> None:
    states = _virtio_states(stream_path)
    assert states or not _expects_virtio(stream_path), "no virtio section found"
    for state in states:
        value = state.record.fields["virtio"]
        transport = transport_for_idstr(state.idstr)
        assert transport is not None
        queues = value.fields["vq"]
        assert len(queues) == value.fields["num_queues"] > 0
        assert len(value.fields["config"]) == value.fields["config_len"]
        if transport.name == "mmio":
            assert all(q.fields["align"] == 4096 for q in queues)
        else:
            config = value.fields["transport"].fields["pci"].fields["config"]
            assert config[:2] == b"\xf4\x1a"  # Red Hat / virtio vendor id
            vectors = msix_vectors(config)
            assert len(value.fields["transport"].fields.get("msix_table", b"")) == 16 * vectors
            assert all(("vector" in q.fields) == bool(vectors) for q in queues)
        # subsections come in QEMU's declaration order
        from devices.virtio.common import SUBSECTION_NAMES

        names = list(value.subsections)
        assert names == sorted(names, key=SUBSECTION_NAMES.index)


def test_legacy_and_modern_pc_streams_carry_the_expected_subsections(corpus_file) -> None:  # type: ignore[no-untyped-def]
    legacy = _virtio_states(corpus_file("pc-7.2-virtio-net-legacy.mig"))[0].record.fields["virtio"]
    modern = _virtio_states(corpus_file("pc-7.2-virtio-net-modern.mig"))[0].record.fields["virtio"]
    assert list(legacy.subsections) == ["virtio/64bit_features", "virtio/extra_state"]
    assert list(modern.subsections) == ["virtio/64bit_features", "virtio/virtqueues", "virtio/extra_state"]
    assert legacy.subsections["virtio/extra_state"].fields["extra_state"].subsections == {}
    modern_state = modern.subsections["virtio/extra_state"].fields["extra_state"].subsections
    assert len(modern_state["virtio_pci/modern_state"].fields["vqs"]) == 1024
    net = legacy.fields["device"].fields
    assert net["mac"] == bytes.fromhex("525400123456")
    assert net["status"] == 1 and net["promisc"] == 1
    assert [q.fields["num"] for q in legacy.fields["vq"]] == [256, 256, 64]


def test_old_layout_has_no_virtio_subsections(corpus_file) -> None:  # type: ignore[no-untyped-def]
    states = _virtio_states(corpus_file("pc-2.2-virtio-all.mig"))
    assert {s.idstr.rsplit("/", 1)[-1] for s in states} == {
        "virtio-net", "virtio-blk", "virtio-console", "virtio-balloon", "virtio-rng", "virtio-scsi"}
    for state in states:
        assert state.record.fields["virtio"].subsections == {}, state.idstr


def test_virtio_serial_config_is_in_device_byte_order(corpus_file) -> None:  # type: ignore[no-untyped-def]
    """7.2 writes get_config's device-order values with big-endian puts: swapped on ppc64."""
    def serial(name: str) -> dict:  # type: ignore[type-arg]
        states = _virtio_states(corpus_file(name))
        return next(s for s in states if s.idstr.endswith("virtio-console")).record.fields["virtio"].fields["device"].fields

    assert serial("pc-7.2-virtio-all-legacy.mig")["config_max_nr_ports"] == 31
    assert serial("pseries-7.2-virtio-all-legacy.mig")["config_max_nr_ports"] == 31 << 24
    # ports_map bits are the ids of the active ports
    device = serial("pc-7.2-virtio-all-legacy.mig")
    ids = sum(1 << port.fields["id"] for port in device["ports"])
    # bit 0 stays reserved for a console port (mark_port_added(vser, 0) at realize)
    assert device["ports_map"] == [ids | 1] and device["nr_active_ports"] == len(device["ports"])


def test_virtio_mmio_v2_extra_state_is_named(corpus_file) -> None:  # type: ignore[no-untyped-def]
    states = _virtio_states(corpus_file("virt-7.2-virtio-mmio-all-v2.mig"))
    assert len(states) == 6
    for state in states:
        extra = state.record.fields["virtio"].subsections["virtio/extra_state"].fields["extra_state"]
        assert len(extra.subsections["virtio_mmio/state"].fields["vqs"]) == 1024


def _net_section(corpus_file) -> tuple[bytes, int, int]:  # type: ignore[no-untyped-def]
    data = corpus_file("pc-7.2-virtio-net-legacy.mig").read_bytes()
    header = b"0000:00:02.0/virtio-net" + bytes(4) + (11).to_bytes(4, "big")
    start = data.index(header) + len(header)
    return data, start, start + 1019


def test_too_many_queues_is_malformed_with_path(corpus_file) -> None:  # type: ignore[no-untyped-def]
    data, start, end = _net_section(corpus_file)
    num_queues_at = start + 363  # [A] 343 bytes, then status/isr/sel/features/config_len/config
    assert data[num_queues_at : num_queues_at + 4] == b"\x00\x00\x00\x03"
    body = data[start:num_queues_at] + (5000).to_bytes(4, "big") + data[num_queues_at + 4 : end]
    description = DEFAULT_REGISTRY("0000:00:02.0/virtio-net", 0, 11)
    assert description is not None
    with pytest.raises(MalformedError) as caught:
        decode(description, ByteReader(body, base_offset=start), 11)
    assert "VIRTIO_QUEUE_MAX" in str(caught.value)
    assert caught.value.path == ("virtio", "num_queues")
    assert caught.value.offset == num_queues_at
    # In a whole stream the vmdesc (which sees one opaque blob) takes over, and says why.
    bad = data[:num_queues_at] + (5000).to_bytes(4, "big") + data[num_queues_at + 4 :]
    records = list(StreamReader(io.BytesIO(bad), descriptions=DEFAULT_REGISTRY))
    state = next(r for r in records if isinstance(r, DeviceState) and r.idstr.endswith("virtio-net"))
    assert state.source == "vmdesc" and state.fallback and "VIRTIO_QUEUE_MAX" in state.fallback


def test_unknown_virtio_subsection_is_named(corpus_file) -> None:  # type: ignore[no-untyped-def]
    data, start, end = _net_section(corpus_file)
    marker = b"\x05\x12virtio/extra_state"
    at = data.index(marker, start)
    bad = data[:at] + b"\x05\x12virtio/extra_stat!" + data[at + len(marker) :]
    records = list(StreamReader(io.BytesIO(bad), descriptions=DEFAULT_REGISTRY))
    # the unknown subsection makes our description step aside; the vmdesc still explains the bytes
    state = next(r for r in records if isinstance(r, DeviceState) and r.idstr.endswith("virtio-net"))
    assert state.source == "vmdesc"


def test_truncated_virtio_section_names_the_field(corpus_file) -> None:  # type: ignore[no-untyped-def]
    data, start, end = _net_section(corpus_file)
    description = DEFAULT_REGISTRY("0000:00:02.0/virtio-net", 0, 11)
    assert description is not None
    body = data[start:end]
    for cut in (10, 300, 380, 420, 470, 900):
        with pytest.raises(TruncatedError) as caught:
            decode(description, ByteReader(body[:cut], base_offset=start), 11)
        assert caught.value.offset is not None and caught.value.offset <= start + cut
        assert caught.value.path and caught.value.path[0] == "virtio"
    record = decode(description, ByteReader(body, base_offset=start), 11)
    assert isinstance(record.fields["virtio"], Record)
