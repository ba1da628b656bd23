"""VirtIODevice: QEMU's load defaults and save rules for the virtio subsections."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from devices.cpu import AARCH64, PPC64, X86_64, ArmCpu, Endian, Ppc64Cpu, X86Cpu
from devices.virtio.device import VirtIODevice
from devices.virtio.features import VIRTIO_F_VERSION_1
from streams.files import open_stream
from tests.support.paths import CORPUS
from tests.support.streams import stream_bytes
from vmstate.edit import edit_virtio_devices, guess_target, target_for_machine, virtio_devices
from vmstate.errors import EncodeError


def _devices(path: Path) -> list[VirtIODevice]:
    with open_stream(path) as source:
        return [device for _idstr, device in virtio_devices(source)]


def _edited(path: Path, edit) -> bytes:  # type: ignore[no-untyped-def]
    out = io.BytesIO()
    with open_stream(path) as source:
        edit_virtio_devices(source, out, edit)
    return out.getvalue()


def _reloaded_default_differs(device: VirtIODevice) -> bool:
    """QEMU's own quirk: a VERSION_1 device on a big-endian target that arrived without
    virtio/device_endian is BIG after load, so saving it again writes the subsection."""
    return (
        "virtio/device_endian" not in device.record.subsections
        and bool(device.guest_features >> VIRTIO_F_VERSION_1 & 1)
        and device.target.default_endian != Endian.LITTLE
    )


def test_unchanged_devices_save_as_qemu_would_save_them_again(stream_path: Path) -> None:
    devices = _devices(stream_path)
    for device in devices:
        expected = list(device.record.subsections)
        if _reloaded_default_differs(device):
            expected.insert(0, "virtio/device_endian")
        assert device.subsections_needed() == expected
    if not any(_reloaded_default_differs(d) for d in devices):
        assert _edited(stream_path, lambda _i, _d: None) == stream_bytes(stream_path)


def test_absent_subsection_means_the_targets_default(corpus_file) -> None:  # type: ignore[no-untyped-def]
    assert {d.device_endian for d in _devices(corpus_file("pseries-7.2-virtio-all-legacy.mig"))} == {Endian.BIG}
    assert {d.device_endian for d in _devices(corpus_file("pseries-2.2-virtio-all.mig"))} == {Endian.BIG}
    assert {d.device_endian for d in _devices(corpus_file("virt-7.2-virtio-mmio-all.mig"))} == {Endian.LITTLE}
    assert {d.device_endian for d in _devices(corpus_file("pc-2.1-virtio-all.mig"))} == {Endian.LITTLE}


@pytest.mark.parametrize(
    ("name", "cpu", "expected"),
    [
        ("pseries-7.2-virtio-all-legacy.mig", Ppc64Cpu.little_endian(), Endian.LITTLE),
        ("virt-7.2-virtio-mmio-all.mig", ArmCpu.at_el(1, big_endian=True), Endian.BIG),
    ],
)
def test_a_cross_endian_guest_reset_travels_in_the_subsection(corpus_file, name: str, cpu, expected: Endian) -> None:  # type: ignore[no-untyped-def]
    def guest_reset(_idstr: str, device: VirtIODevice) -> None:
        device.reset(cpu)  # the guest's vCPU writes 0 to the status register

    data = _edited(corpus_file(name), guest_reset)
    devices = [d for _i, d in virtio_devices(io.BytesIO(data))]
    assert devices and all(d.device_endian == expected for d in devices)
    assert all(list(d.record.subsections)[0] == "virtio/device_endian" for d in devices)
    assert data.count(b"\x05\x14virtio/device_endian\x00\x00\x00\x01" + bytes((expected,))) == len(devices)

    def back_to_default(_idstr: str, device: VirtIODevice) -> None:
        device.reset(None)  # a system reset: the target's default

    out = io.BytesIO()
    edit_virtio_devices(io.BytesIO(data), out, back_to_default)
    assert b"virtio/device_endian" not in out.getvalue()


def test_needed_rule_for_version_1_devices_compares_with_little(corpus_file) -> None:  # type: ignore[no-untyped-def]
    (device,) = _devices(corpus_file("pc-7.2-virtio-net-modern.mig"))
    device.guest_features |= 1 << VIRTIO_F_VERSION_1
    device.target = PPC64  # even on a big-endian target, a VERSION_1 device is little-endian
    device.device_endian = Endian.LITTLE
    assert "virtio/device_endian" not in device.subsections_needed()
    device.device_endian = Endian.BIG
    assert device.subsections_needed()[0] == "virtio/device_endian"


def test_reset_samples_the_resetting_cpu() -> None:
    for target, cpu, expected in [
        (X86_64, X86Cpu(), Endian.LITTLE),
        (PPC64, Ppc64Cpu.little_endian(), Endian.LITTLE),
        (PPC64, Ppc64Cpu.big_endian(), Endian.BIG),
        (AARCH64, ArmCpu.at_el(1, big_endian=True), Endian.BIG),
        (PPC64, None, Endian.BIG),
        (AARCH64, None, Endian.LITTLE),
    ]:
        device = _devices(CORPUS / "pc-7.2-virtio-rng-legacy.mig")[0]
        device.target = target
        device.reset(cpu)
        assert device.device_endian == expected


def test_unknown_device_endian_cannot_be_saved(corpus_file) -> None:  # type: ignore[no-untyped-def]
    (device,) = _devices(corpus_file("pc-7.2-virtio-rng-legacy.mig"))
    device.device_endian = Endian.UNKNOWN
    with pytest.raises(EncodeError, match="UNKNOWN"):
        device.to_record()


def test_targets_from_machine_names_and_sections() -> None:
    assert target_for_machine("pc-i440fx-7.2") is X86_64
    assert target_for_machine("pseries-2.2") is PPC64
    assert target_for_machine("virt-7.2") is AARCH64
    assert target_for_machine("s390-ccw-virtio-7.2") is None
    assert guess_target(["spapr", "ram"]) is PPC64
    assert guess_target(["timer", "0000:00:02.0/virtio-net"]) is X86_64


@pytest.mark.parametrize(
    ("name", "endian", "carried"),
    [
        ("virt-7.2-bare-be-mmio.mig.xz", Endian.BIG, True),  # guest reset with SCTLR_EL1.EE = 1
        ("virt-7.2-bare-le-mmio.mig.xz", Endian.LITTLE, False),  # the same program without EE
        ("pseries-7.2-booted-ppc64le-legacy.mig.xz", Endian.LITTLE, True),  # the seed's scenario
        ("pc-7.2-booted-virtio-legacy.mig.xz", Endian.LITTLE, False),
        ("virt-10.0-bare-be-mmio.mig.xz", Endian.BIG, True),  # the same under QEMU 10.0 on virt-10.0
        ("virt-10.0-bare-le-mmio.mig.xz", Endian.LITTLE, False),
        ("pc-10.0-booted-virtio-legacy.mig.xz", Endian.LITTLE, False),
    ],
)
def test_real_guests_device_endian(corpus_file, name: str, endian: Endian, carried: bool) -> None:  # type: ignore[no-untyped-def]
    devices = _devices(corpus_file(name))
    assert len(devices) == 6
    for device in devices:
        assert device.device_endian == endian
        assert ("virtio/device_endian" in device.record.subsections) == carried
