"""Real QEMU 10.0 loads what we write: its own streams written back by our code, and virtio state we edited.

The inputs are the committed QEMU 10.0 fixtures (compat_fixtures/generate.py); each is loaded by
QEMU 10.0 started with the fixture's own command line (from the manifest) and ``-incoming defer``,
and counts as loaded only once ``query-migrate`` says ``completed``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import pytest

from compat_fixtures.generate import make_images
from compat_fixtures.qemu_versions import QemuMissing, qemu
from devices.cpu import Endian
from devices.virtio.device import VirtIODevice
from streams.files import open_stream
from tests.support.paths import CORPUS, ROOT
from tests.support.qemu_driver import load_and_resave
from tests.support.streams import stream_bytes
from vmstate.edit import edit_virtio_devices, virtio_devices

pytestmark = [pytest.mark.qemu, pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")]

MANIFEST = ROOT / "compat_fixtures" / "manifest.json"


def _argv(name: str, images: Path) -> list[str]:
    """QEMU 10.0 running fixture ``name``'s command line (its disk images made in ``images``)."""
    entry = next(e for e in json.loads(MANIFEST.read_text(encoding="utf-8"))["streams"] if e["name"] == name)
    assert entry["qemu"] == "10.0"
    argv = list(entry["argv"])
    assert argv[-2:] == ["-monitor", "stdio"]  # the generator's monitor; load_and_resave brings QMP
    make_images(argv, images)
    try:
        prefix = qemu("10.0").command(argv[0])
    except QemuMissing as exc:
        pytest.fail(str(exc))
    return [*prefix, *(a.replace("@IMAGES@", str(images)) for a in argv[1:-2])]


def _write_back(name: str, out: Path, edit: Callable[[str, VirtIODevice], None]) -> int:
    with open_stream(CORPUS / f"{name}.mig.xz") as source, open(out, "wb") as sink:
        return edit_virtio_devices(source, sink, edit)


def _devices(path: Path) -> dict[str, VirtIODevice]:
    with open_stream(path) as source:
        return dict(virtio_devices(source))


def _unchanged(_idstr: str, _device: VirtIODevice) -> None:
    pass


@pytest.mark.parametrize("name", [
    "pc-10.0-virtio-all-modern",        # the six on modern virtio-pci, pc-i440fx-10.0
    "pc-10.0-virtio-more-modern",       # input, gpu (scanouts with framebuffer), iommu, mem (early section)
    "pc-10.0-on-7.2-virtio-vga",        # two scanouts: the first without, the second with a framebuffer
    "virt-10.0-virtio-mmio-all-v2",     # aarch64, virtio-mmio version 2
    "pseries-10.0-virtio-all-legacy",   # ppc64, cpu/slb version 2
])
def test_ten_loads_its_stream_as_our_code_writes_it_back(name: str, tmp_path: Path) -> None:
    ours = tmp_path / f"{name}.mig"
    assert _write_back(name, ours, _unchanged) > 0  # every virtio section through VirtIODevice
    assert ours.read_bytes() == stream_bytes(CORPUS / f"{name}.mig.xz")
    assert load_and_resave(_argv(name, tmp_path), ours, tmp_path) == "completed"


def test_ten_keeps_a_mac_and_a_virtio_mem_request_we_wrote(tmp_path: Path) -> None:
    mac = bytes.fromhex("0285deadbeef")

    def edit(idstr: str, device: VirtIODevice) -> None:
        assert device.device is not None or idstr.endswith(("virtio-input", "virtio-gpu", "virtio-iommu"))
        if idstr.endswith("/virtio-mem"):
            # the device part of a 10.0 machine type: usable_region_size and requested_size only
            assert set(device.device.fields) == {"usable_region_size", "requested_size"}  # type: ignore[union-attr]
            device.device.fields["requested_size"] = 32 << 20  # type: ignore[union-attr]

    ours = tmp_path / "mem.mig"
    _write_back("pc-10.0-virtio-more-modern", ours, edit)
    resaved = tmp_path / "resaved.mig"
    assert load_and_resave(_argv("pc-10.0-virtio-more-modern", tmp_path), ours, tmp_path, resaved) == "completed"
    mem = next(d for idstr, d in _devices(resaved).items() if idstr.endswith("/virtio-mem"))
    assert mem.device is not None and mem.device.fields["requested_size"] == 32 << 20

    def new_mac(idstr: str, device: VirtIODevice) -> None:
        if idstr.endswith("/virtio-net"):
            assert device.device is not None
            device.device.fields["mac"] = mac

    ours = tmp_path / "mac.mig"
    _write_back("pc-10.0-virtio-all-modern", ours, new_mac)
    resaved = tmp_path / "resaved-mac.mig"
    assert load_and_resave(_argv("pc-10.0-virtio-all-modern", tmp_path), ours, tmp_path, resaved) == "completed"
    net = next(d for idstr, d in _devices(resaved).items() if idstr.endswith("/virtio-net"))
    assert net.device is not None and net.device.fields["mac"] == mac


def test_ten_loads_little_endian_devices_we_set_on_pseries(tmp_path: Path) -> None:
    def little(_idstr: str, device: VirtIODevice) -> None:
        device.device_endian = Endian.LITTLE  # the seed's LE guest on a BE target

    ours = tmp_path / "le.mig"
    assert _write_back("pseries-10.0-virtio-all-legacy", ours, little) == 6
    assert ours.read_bytes().count(b"\x05\x14virtio/device_endian\x00\x00\x00\x01\x01") == 6
    resaved = tmp_path / "resaved.mig"
    argv = _argv("pseries-10.0-virtio-all-legacy", tmp_path)
    assert load_and_resave(argv, ours, tmp_path, resaved) == "completed"
    after = _devices(resaved)
    assert len(after) == 6 and all(d.device_endian == Endian.LITTLE for d in after.values())
