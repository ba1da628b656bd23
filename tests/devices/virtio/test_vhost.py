"""vhost-net refuses cross-endian legacy devices unless the kernel can be told; virtio-net falls back."""

from __future__ import annotations

import pytest

from devices.cpu import (
    AARCH64,
    PPC64,
    S390X,
    X86_64,
    ArmCpu,
    Endian,
    Ppc64Cpu,
    sample_device_endian,
)
from devices.virtio.access import HOST_BIG_ENDIAN, DeviceEndianUnknownError, EndianState
from devices.virtio.vhost import (
    Datapath,
    NetBackendChoice,
    VhostError,
    VhostNetBackend,
    VhostStart,
    select_net_backend,
    start_vhost,
)
from vmstate.errors import UnsupportedError, VMStateError

OLD_KERNEL = VhostNetBackend()
NEW_KERNEL = VhostNetBackend(supports_cross_endian=True)

SUBJECTS = {
    "x86-legacy": (EndianState.legacy(X86_64), False),
    "ppc64-legacy-be": (EndianState.legacy(PPC64, Endian.BIG), True),
    "ppc64-legacy-le": (EndianState.legacy(PPC64, Endian.LITTLE), False),
    "aarch64-legacy-be": (EndianState.legacy(AARCH64, Endian.BIG), True),
    "aarch64-legacy-le": (EndianState.legacy(AARCH64), False),
    "s390x-legacy": (EndianState.legacy(S390X), True),
    "ppc64-modern": (EndianState.modern(PPC64, Endian.BIG), False),
    "aarch64-modern": (EndianState.modern(AARCH64, Endian.BIG), False),
}
subjects = pytest.mark.parametrize("subject, big", list(SUBJECTS.values()), ids=list(SUBJECTS))
hosts = pytest.mark.parametrize("host_big", [False, True], ids=["le-host", "be-host"])


@hosts
@subjects
def test_old_kernel_refuses_exactly_the_cross_endian_legacy_devices(subject, big, host_big) -> None:
    if big == host_big or subject.guest_features:
        assert start_vhost(subject, OLD_KERNEL, host_big_endian=host_big) == VhostStart(vring_endian=None)
        return
    with pytest.raises(VhostError) as info:
        start_vhost(subject, OLD_KERNEL, host_big_endian=host_big)
    message = str(info.value)
    assert "cross-endian" in message
    assert ("device is big-endian" if big else "device is little-endian") in message
    assert ("host is big-endian" if host_big else "host is little-endian") in message
    assert isinstance(info.value, UnsupportedError) and isinstance(info.value, VMStateError)


@hosts
@subjects
def test_new_kernel_is_told_the_ring_order(subject, big, host_big) -> None:
    start = start_vhost(subject, NEW_KERNEL, host_big_endian=host_big)
    cross = big != host_big and not subject.guest_features
    assert start.vring_endian == (Endian.of(big) if cross else None)


@hosts
@pytest.mark.parametrize("name", ["ppc64-modern", "aarch64-modern"])
def test_version_1_devices_are_always_fine(name, host_big) -> None:
    # device_endian says BIG and the device is LE: on either host the kernel
    # handles VERSION_1 rings itself, so nothing is refused nor set
    subject, _ = SUBJECTS[name]
    assert start_vhost(subject, OLD_KERNEL, host_big_endian=host_big) == VhostStart()
    assert start_vhost(subject, NEW_KERNEL, host_big_endian=host_big) == VhostStart()


def test_le_host_le_device_is_fine() -> None:
    assert start_vhost(EndianState.legacy(X86_64), OLD_KERNEL, host_big_endian=False) == VhostStart()


@hosts
@subjects
def test_select_falls_back_to_userspace_instead_of_raising(subject, big, host_big) -> None:
    choice = select_net_backend(subject, OLD_KERNEL, host_big_endian=host_big)
    if big == host_big or subject.guest_features:
        assert choice == NetBackendChoice(datapath=Datapath.VHOST, start=VhostStart())
    else:
        assert choice.datapath is Datapath.USERSPACE
        assert choice.datapath.value == "userspace"
        assert choice.start is None
        assert choice.reason is not None and "does not support cross-endian" in choice.reason
    # with the ioctl available vhost is always used
    assert select_net_backend(subject, NEW_KERNEL, host_big_endian=host_big).datapath is Datapath.VHOST


def test_no_backend_means_userspace() -> None:
    choice = select_net_backend(EndianState.legacy(X86_64), None)
    assert choice.datapath is Datapath.USERSPACE and choice.reason == "no vhost backend configured"


def test_an_unknown_device_endian_is_not_mistaken_for_a_fallback() -> None:
    subject = EndianState.legacy(PPC64, Endian.UNKNOWN)
    with pytest.raises(DeviceEndianUnknownError):
        select_net_backend(subject, OLD_KERNEL, host_big_endian=False)


def test_ppc64le_guest_on_an_x86_like_le_host() -> None:
    """The 2.2 scenario: a ppc64le guest (LE after its driver's reset) on a LE host, and a BE one."""
    cpu = Ppc64Cpu.big_endian()
    be = EndianState.legacy(PPC64, sample_device_endian(PPC64, cpu))
    assert select_net_backend(be, OLD_KERNEL, host_big_endian=False).datapath is Datapath.USERSPACE
    assert select_net_backend(be, OLD_KERNEL, host_big_endian=True).datapath is Datapath.VHOST
    le = EndianState.legacy(PPC64, sample_device_endian(PPC64, cpu.with_data_endian(False)))
    assert select_net_backend(le, OLD_KERNEL, host_big_endian=False).datapath is Datapath.VHOST
    assert select_net_backend(le, OLD_KERNEL, host_big_endian=True).datapath is Datapath.USERSPACE


def test_aarch64_be_guest_on_a_le_host() -> None:
    subject = EndianState.legacy(AARCH64, sample_device_endian(AARCH64, ArmCpu.at_el(1, big_endian=True)))
    with pytest.raises(VhostError):
        start_vhost(subject, OLD_KERNEL, host_big_endian=False)
    assert start_vhost(subject, NEW_KERNEL, host_big_endian=False).vring_endian is Endian.BIG


def test_default_host_is_this_machine() -> None:
    subject = EndianState.legacy(PPC64, Endian.of(HOST_BIG_ENDIAN))
    assert start_vhost(subject, OLD_KERNEL) == VhostStart()
    other = EndianState.legacy(PPC64, Endian.of(not HOST_BIG_ENDIAN))
    with pytest.raises(VhostError):
        start_vhost(other, OLD_KERNEL)
