"""Streams in earlier virtio versions load into today's state types."""

from __future__ import annotations

from pathlib import Path

import pytest

from compat_fixtures.old_layouts import OLD_LAYOUTS, write_old_layout
from devices.virtio.net import VirtIONet
from devices.virtio.serial import VirtIOSerial
from tests.support.paths import ROOT
from vmstate.edit import virtio_devices
from vmstate.typed import from_record


def _device_part(path: Path, suffix: str):  # type: ignore[no-untyped-def]
    with open(path, "rb") as source:
        for idstr, device in virtio_devices(source):
            if idstr.endswith(suffix):
                return device.device
    raise AssertionError(f"no {suffix} in {path}")


@pytest.mark.parametrize(("name", "vmsd_name", "device_cls", "version"), OLD_LAYOUTS, ids=[o[0] for o in OLD_LAYOUTS])
def test_committed_old_layout_is_what_the_script_writes(tmp_path: Path, name: str, vmsd_name: str, device_cls: type, version: int) -> None:
    out = tmp_path / name
    write_old_layout(out, vmsd_name, device_cls, version)
    assert out.read_bytes() == (ROOT / "compat_fixtures" / "streams" / name).read_bytes()


@pytest.mark.parametrize("version", [4, 7, 10])
def test_old_virtio_net_loads_with_todays_defaults(corpus_file, version: int) -> None:  # type: ignore[no-untyped-def]
    current = from_record(VirtIONet, _device_part(corpus_file("pc-2.2-virtio-all.mig"), "/virtio-net"))
    record = _device_part(corpus_file(f"pc-2.2-virtio-net-v{version}.mig"), "/virtio-net")
    assert record.version == version
    old = from_record(VirtIONet, record)
    assert old.mac == current.mac == bytes.fromhex("525400123456")
    assert old.status == current.status == 1
    assert old.promisc == current.promisc == 1  # a be32 before version 8, a byte since
    assert ("promisc_v4" in record.fields) == (version < 8)
    assert old.has_ufo == 0 and "has_ufo" not in record.fields
    if version < 5:
        assert "mac_table_in_use" not in record.fields and old.mac_table_macs == b""
    if version < 6:
        # the bitmap was not sent: today's default (none) until the guest sets one
        assert old.vlans == bytes(512) and current.vlans == b"\xff" * 512


def test_virtio_serial_version_2_has_no_popped_elements(corpus_file) -> None:  # type: ignore[no-untyped-def]
    current = from_record(VirtIOSerial, _device_part(corpus_file("pc-2.2-virtio-all.mig"), "/virtio-console"))
    record = _device_part(corpus_file("pc-2.2-virtio-console-v2.mig"), "/virtio-console")
    assert record.version == 2 and "ports" not in record.fields
    old = from_record(VirtIOSerial, record)
    assert [p.id for p in old.ports_v2] == [p.id for p in current.ports]
    assert old.ports_map == current.ports_map
    # the config space is still there, read and dropped as by every loader since 2.2
    assert old.config_max_nr_ports == current.config_max_nr_ports == 31
