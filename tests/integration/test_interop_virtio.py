"""Real QEMU 7.2 accepts virtio state we changed, and re-saves what we wrote."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest

from compat_fixtures.generate import run_vm
from devices.cpu import Endian
from devices.virtio.device import VirtIODevice
from tests.support.qemu_driver import load_and_resave
from vmstate.edit import edit_virtio_devices, virtio_devices

pytestmark = [pytest.mark.qemu, pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")]

PSERIES = [
    "qemu-system-ppc64", "-M", "pseries", "-S", "-nodefaults", "-nographic", "-m", "256",
    "-global", "spapr-pci-host-bridge.dma_win_size=0x1000000",
    "-device", "virtio-net-pci,disable-modern=on",
    "-device", "virtio-rng-pci,disable-modern=on",
    "-device", "virtio-balloon-pci,disable-modern=on",
]
PC = ["qemu-system-x86_64", "-M", "pc", "-S", "-nodefaults", "-nographic", "-m", "16",
      "-device", "virtio-net-pci,disable-modern=on"]


def _paused_stream(argv: list[str], tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    if shutil.which(argv[0]) is None:
        pytest.fail(f"{argv[0]} is not installed (.ci/run installs Debian's QEMU)")
    target = tmp_path_factory.mktemp("qemu") / name
    run_vm([*argv, "-monitor", "stdio"], target)
    return target


@pytest.fixture(scope="module")
def pseries_stream(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _paused_stream(PSERIES, tmp_path_factory, "pseries.mig")


@pytest.fixture(scope="module")
def pc_stream(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _paused_stream(PC, tmp_path_factory, "pc.mig")


def _edit(stream: Path, out: Path, edit) -> int:  # type: ignore[no-untyped-def]
    with open(stream, "rb") as source, open(out, "wb") as sink:
        return edit_virtio_devices(source, sink, edit)


def _devices(path: Path) -> dict[str, VirtIODevice]:
    with open(path, "rb") as source:
        return dict(virtio_devices(source))


def test_little_endian_devices_on_pseries_load_into_qemu_and_come_back(pseries_stream: Path, tmp_path: Path) -> None:
    before = _devices(pseries_stream)
    assert before and all(d.device_endian == Endian.BIG for d in before.values())
    assert not any("virtio/device_endian" in d.record.subsections for d in before.values())

    def little(_idstr: str, device: VirtIODevice) -> None:
        device.device_endian = Endian.LITTLE  # the seed's LE guest on a BE target

    ours = tmp_path / "le.mig"
    assert _edit(pseries_stream, ours, little) == 3
    assert ours.read_bytes().count(b"\x05\x14virtio/device_endian\x00\x00\x00\x01\x01") == 3
    resaved = tmp_path / "resaved.mig"
    assert load_and_resave(PSERIES, ours, tmp_path, resaved) == "completed"
    after = _devices(resaved)
    assert set(after) == set(before)
    for device in after.values():
        assert device.device_endian == Endian.LITTLE
        assert "virtio/device_endian" in device.record.subsections


def test_changed_mac_is_what_qemu_saves_again(pc_stream: Path, tmp_path: Path) -> None:
    mac = bytes.fromhex("0285deadbeef")

    def new_mac(_idstr: str, device: VirtIODevice) -> None:
        assert device.device is not None
        device.device.fields["mac"] = mac

    ours = tmp_path / "mac.mig"
    assert _edit(pc_stream, ours, new_mac) == 1
    resaved = tmp_path / "resaved.mig"
    assert load_and_resave(PC, ours, tmp_path, resaved) == "completed"
    (device,) = _devices(resaved).values()
    assert device.device is not None and device.device.fields["mac"] == mac


def test_broken_subsection_is_rejected_by_qemu_and_by_us(pc_stream: Path, tmp_path: Path) -> None:
    from devices import DEFAULT_REGISTRY
    from vmstate.engine import decode
    from vmstate.errors import VersionError
    from vmstate.wire import ByteReader

    def big(_idstr: str, device: VirtIODevice) -> None:
        device.device_endian = Endian.BIG  # not x86's default: the subsection is written

    ours = tmp_path / "be.mig"
    _edit(pc_stream, ours, big)
    data = bytearray(ours.read_bytes())
    at = data.index(b"\x05\x14virtio/device_endian") + 22
    assert data[at : at + 4] == b"\x00\x00\x00\x01"
    data[at : at + 4] = b"\x00\x00\x00\x02"  # subsection version 2: newer than anyone knows
    broken = tmp_path / "broken.mig"
    broken.write_bytes(bytes(data))
    assert load_and_resave(PC, broken, tmp_path) == "failed"
    # the control: the unbroken stream loads
    assert load_and_resave(PC, ours, tmp_path) == "completed"
    # our virtio description refuses it too, naming the subsection
    header = b"0000:00:02.0/virtio-net" + bytes(4) + (11).to_bytes(4, "big")
    start = data.index(header) + len(header)
    description = DEFAULT_REGISTRY("0000:00:02.0/virtio-net", 0, 11)
    assert description is not None
    with pytest.raises(VersionError) as caught:
        decode(description, ByteReader(io.BytesIO(bytes(data[start:])), base_offset=start), 11)
    assert "virtio/device_endian" in caught.value.path


PSERIES_MODERN = [
    "qemu-system-ppc64", "-M", "pseries", "-S", "-nodefaults", "-nographic", "-m", "256",
    "-global", "spapr-pci-host-bridge.dma_win_size=0x1000000",
    "-device", "virtio-rng-pci,disable-legacy=on",
]


def test_we_predict_qemus_own_resave_of_a_version_1_device_on_pseries(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    """A VERSION_1 device from a little-endian guest travels without virtio/device_endian;
    the destination then holds the target default (BIG) and its next save carries it."""
    from devices.virtio.features import VIRTIO_F_VERSION_1

    paused = _paused_stream(PSERIES_MODERN, tmp_path_factory, "pseries-modern.mig")

    def negotiated_by_le_guest(_idstr: str, device: VirtIODevice) -> None:
        device.guest_features |= 1 << VIRTIO_F_VERSION_1
        device.device_endian = Endian.LITTLE  # as a ppc64le guest's reset leaves it

    ours = tmp_path / "v1.mig"
    assert _edit(paused, ours, negotiated_by_le_guest) == 1
    assert b"virtio/device_endian" not in ours.read_bytes()
    (predicted,) = _devices(ours).values()
    assert predicted.device_endian == Endian.BIG
    resaved = tmp_path / "resaved.mig"
    assert load_and_resave(PSERIES_MODERN, ours, tmp_path, resaved) == "completed"
    (actual,) = _devices(resaved).values()
    assert list(actual.record.subsections) == predicted.subsections_needed()
    assert actual.record.subsections["virtio/device_endian"].fields["device_endian"] == Endian.BIG
