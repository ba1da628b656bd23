"""Snapshot files: save and load device sets and streams, old description versions, conversions, atomicity."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices import DEFAULT_REGISTRY, Registry
from devices.machine import Timer
from devices.virtio.net import VirtIONet
from streams.convert import convert
from streams.qemu import Configuration, DeviceState, RamPage, StreamReader, StreamRecord
from streams.snapshots import (
    CODECS,
    load_snapshot,
    read_index,
    read_records,
    save_snapshot,
    snapshot_to_stream,
    stream_to_snapshot,
)
from tests.support.paths import CORPUS
from tests.support.streams import stream_bytes
from vmstate import (
    MalformedError,
    Subsection,
    UnsupportedError,
    VersionError,
    description_of,
    field,
    from_record,
    state,
)
from vmstate.kinds import BOOL, INT64, UINT8, UINT16, UINT32, UINT64, buffer, varray

CODEC_NAMES = list(CODECS)


@state(name="demo", version=1, minimum_version=1)
class DemoV1:
    """The state as an older release of ours described it."""

    status: int = field(UINT8)
    counter: int = field(UINT64)
    offset: int = field(INT64)
    enabled: bool = field(BOOL)
    mac: bytes = field(buffer(6))
    n: int = field(UINT16)
    table: list[int] = field(varray(UINT32, "n"))


@state(
    name="demo",
    version=2,
    minimum_version=1,
    subsections=(Subsection("demo/extra", 1, needed=lambda s: s.extra != 0),),
)
class DemoV2:
    """Today's description: a field since version 2 and a subsection."""

    status: int = field(UINT8)
    counter: int = field(UINT64)
    offset: int = field(INT64)
    enabled: bool = field(BOOL)
    mac: bytes = field(buffer(6))
    n: int = field(UINT16)
    table: list[int] = field(varray(UINT32, "n"))
    queue_index: int = field(UINT16, since_version=2, default=0xFFFF)
    extra: int = field(UINT32, subsection="demo/extra")


@state(name="other", version=2, minimum_version=1)
class Other:
    status: int = field(UINT8)


TODAY = Registry([DemoV2])


def make(cls: Any, **values: Any) -> Any:
    """A state object (state classes are attrs classes mypy cannot see through ``@state``)."""
    return cls(**values)


@st.composite
def demos(draw: st.DrawFn) -> DemoV2:
    table = draw(st.lists(st.integers(0, (1 << 32) - 1), max_size=5))
    return make(
        DemoV2,
        status=draw(st.integers(0, 255)),
        counter=draw(st.integers(0, (1 << 64) - 1)),
        offset=draw(st.integers(-(1 << 63), (1 << 63) - 1)),
        enabled=draw(st.booleans()),
        mac=draw(st.binary(min_size=6, max_size=6)),
        n=len(table),
        table=table,
        queue_index=draw(st.integers(0, 0xFFFF)),
        extra=draw(st.integers(0, (1 << 32) - 1)),
    )


@settings(max_examples=60, deadline=None)
@given(st.lists(demos(), min_size=1, max_size=3), st.sampled_from(CODEC_NAMES))
def test_any_device_set_saves_and_loads_back(tmp_path_factory: pytest.TempPathFactory, devices: list[DemoV2], codec: str) -> None:
    path = tmp_path_factory.mktemp("snap") / "devices.snap"
    by_key = {(f"0000:00:0{i}.0/demo", i): device for i, device in enumerate(devices)}
    index = save_snapshot(path, by_key, codec=codec)
    assert index.content == "devices" and [e.description_version for e in index.devices] == [2] * len(devices)
    snapshot = load_snapshot(path, descriptions=TODAY)
    assert snapshot.codec == codec and snapshot.content == "devices" and snapshot.configuration is None
    assert snapshot.states() == by_key


def test_an_old_description_version_loads_with_todays_defaults(tmp_path: Path) -> None:
    path = tmp_path / "old.snap"
    old = make(DemoV1, status=3, counter=1 << 40, offset=-5, enabled=True, mac=b"\x52\x54\x00\x12\x34\x56", n=2, table=[7, 8])
    save_snapshot(path, {"demo": old})
    with open(path, "rb") as file:
        assert [(e.description, e.description_version) for e in read_index(file).devices] == [("demo", 1)]
    snapshot = load_snapshot(path, descriptions=TODAY)
    device = snapshot.device("demo")
    assert device.description is description_of(DemoV2)
    assert device.record.version == 1 and snapshot.index.devices[0].description_version == 1
    loaded = snapshot.states()[("demo", 0)]
    assert isinstance(loaded, DemoV2)
    assert (loaded.status, loaded.counter, loaded.offset, loaded.mac, loaded.table) == (3, 1 << 40, -5, old.mac, [7, 8])
    assert loaded.queue_index == 0xFFFF and loaded.extra == 0  # not in a version-1 state: today's defaults


def test_what_no_description_of_ours_loads_is_a_typed_error(tmp_path: Path) -> None:
    path = tmp_path / "demo.snap"
    save_snapshot(path, {"demo": make(DemoV2, extra=1)})
    with pytest.raises(MalformedError, match="decoded this section with 'demo'; ours is 'other'") as caught:
        load_snapshot(path, descriptions=lambda idstr, instance_id, version: description_of(Other))
    assert caught.value.section == "demo"
    with pytest.raises(VersionError, match="no description of ours loads section version 2") as too_new:
        load_snapshot(path, descriptions=Registry([DemoV1]))
    assert too_new.value.section == "demo" and "'demo' v2" in str(too_new.value)


def test_old_qemu_layouts_load_into_todays_state_types(tmp_path: Path) -> None:
    path = tmp_path / "v4.snap"
    stream_to_snapshot(CORPUS / "pc-2.2-virtio-net-v4.mig", path, "cbor", descriptions=DEFAULT_REGISTRY)
    snapshot = load_snapshot(path, descriptions=DEFAULT_REGISTRY)
    net = next(d for d in snapshot.devices if d.idstr.endswith("/virtio-net"))
    part = net.record.fields["virtio"].fields["device"]
    assert net.version == part.version == 4
    assert from_record(VirtIONet, part).mac == bytes.fromhex("525400123456")
    timer = snapshot.states()[("timer", 0)]
    assert isinstance(timer, Timer)


def test_a_stream_snapshot_loads_devices_and_streams_ram_past(tmp_path: Path) -> None:
    source = CORPUS / "q35-7.2-virtio-net-modern.mig"
    with open(source, "rb") as file:
        records = list(StreamReader(file, descriptions=DEFAULT_REGISTRY))
    path = tmp_path / "q35.json"
    index = stream_to_snapshot(source, path, "json", descriptions=DEFAULT_REGISTRY)
    snapshot = load_snapshot(path, descriptions=DEFAULT_REGISTRY)
    assert snapshot.devices == tuple(r for r in records if isinstance(r, DeviceState))
    assert isinstance(snapshot.configuration, Configuration) and snapshot.configuration.machine == "pc-q35-7.2"
    assert snapshot.index == index and index.ram_pages == sum(isinstance(r, RamPage) for r in records)
    assert snapshot.producer.startswith("vmstate-forge ")


@pytest.mark.parametrize("codec", CODEC_NAMES)
def test_stream_to_snapshot_to_stream_is_byte_identical(tmp_path: Path, codec: str) -> None:
    source = CORPUS / "virt-7.2-bare-be-mmio.mig.xz"  # compressed input is read transparently
    snap, back = tmp_path / f"s.{codec}", tmp_path / "back.mig"
    stream_to_snapshot(source, snap, codec, descriptions=DEFAULT_REGISTRY)
    assert snapshot_to_stream(snap, back, descriptions=DEFAULT_REGISTRY) == back.stat().st_size
    assert back.read_bytes() == stream_bytes(source)


def test_convert_changes_codec_and_keeps_content(tmp_path: Path) -> None:
    devices = tmp_path / "d.msgpack"
    save_snapshot(devices, {"demo": make(DemoV2, status=9)})
    convert(devices, tmp_path / "d.json", "json", descriptions=TODAY)
    again = load_snapshot(tmp_path / "d.json", descriptions=TODAY)
    assert again.codec == "json" and again.content == "devices" and again.states()[("demo", 0)].status == 9
    with pytest.raises(UnsupportedError, match="device states, not a QEMU stream"):
        convert(tmp_path / "d.json", tmp_path / "d.mig", "qemu", descriptions=TODAY)
    assert not (tmp_path / "d.mig").exists()
    source = CORPUS / "pc-2.2-virtio-all.mig"
    convert(source, tmp_path / "s.cbor", "cbor", descriptions=DEFAULT_REGISTRY)
    convert(tmp_path / "s.cbor", tmp_path / "s.msgpack", "msgpack", descriptions=DEFAULT_REGISTRY)
    convert(tmp_path / "s.msgpack", tmp_path / "s.mig", "qemu", descriptions=DEFAULT_REGISTRY)
    assert (tmp_path / "s.mig").read_bytes() == source.read_bytes()


# ---------------------------------------------------------------- atomicity


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_a_failed_save_keeps_the_old_file_and_leaves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "keep.snap"
    save_snapshot(path, {"demo": make(DemoV2, status=1)})
    before = path.read_bytes()

    def broken() -> Any:
        with open(CORPUS / "pc-2.2-virtio-all.mig", "rb") as file:
            yield from StreamReader(file, descriptions=DEFAULT_REGISTRY)
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        save_snapshot(path, broken())
    assert path.read_bytes() == before and _leftovers(tmp_path) == []
    with pytest.raises(Exception, match="unknown codec"):
        save_snapshot(path, {"demo": make(DemoV2)}, codec="yaml")
    assert path.read_bytes() == before and _leftovers(tmp_path) == []


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_new_files_follow_the_umask_and_replaced_ones_keep_their_mode(tmp_path: Path, umask: int) -> None:
    path = tmp_path / "mode.snap"
    old = os.umask(umask)
    try:
        save_snapshot(path, {"demo": make(DemoV2)})
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    os.chmod(path, 0o640)
    save_snapshot(path, {"demo": make(DemoV2, status=2)})
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert load_snapshot(path, descriptions=TODAY).states()[("demo", 0)].status == 2


def test_records_of_a_snapshot_are_the_streams(tmp_path: Path) -> None:
    # read_records is what the diff CLI uses: a snapshot reads as the stream it holds.
    source = CORPUS / "pseries-2.2-virtio-all.mig"
    path = tmp_path / "p.cbor"
    stream_to_snapshot(source, path, "cbor", descriptions=DEFAULT_REGISTRY)
    expected: list[StreamRecord] = list(StreamReader(io.BytesIO(source.read_bytes()), descriptions=DEFAULT_REGISTRY))
    with open(path, "rb") as file:
        assert list(read_records(file, descriptions=DEFAULT_REGISTRY)) == expected
