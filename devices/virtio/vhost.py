"""The vhost-net start check: the kernel data path must agree with the device byte order.

Patch 22 of the 2.2 series made vhost-net refuse to start when a legacy
device's endianness differs from the host's ("vhost-net does not support
cross-endian"; hw/net/vhost_net.c), and virtio-net then falls back to the
userspace data path.  From QEMU 2.5 the kernel can be told the ring order
with VHOST_SET_VRING_ENDIAN (hw/virtio/vhost.c, ``vhost_needs_vring_endian``);
only without that ioctl is the start refused.  VIRTIO_F_VERSION_1 devices are
little-endian, which the kernel handles natively.
"""

from __future__ import annotations

import enum

import attrs

from devices.cpu import Endian
from vmstate.errors import UnsupportedError

from .access import HOST_BIG_ENDIAN, EndianSubject, is_big_endian
from .features import VIRTIO_F_VERSION_1

__all__ = ["Datapath", "NetBackendChoice", "VhostError", "VhostNetBackend", "VhostStart", "select_net_backend", "start_vhost"]


class VhostError(UnsupportedError):
    """vhost cannot drive this device (QEMU: vhost_net_start fails, -ENOSYS)."""


@attrs.frozen(kw_only=True)
class VhostNetBackend:
    """A vhost-net kernel backend and what it can do."""

    #: the kernel offers VHOST_SET_VRING_ENDIAN (Linux 4.0+ with CONFIG_VHOST_CROSS_ENDIAN_LEGACY)
    supports_cross_endian: bool = False
    name: str = "vhost-net"


@attrs.frozen(kw_only=True)
class VhostStart:
    """How vhost was started."""

    #: the order passed to VHOST_SET_VRING_ENDIAN, or None if the kernel's native order fits
    vring_endian: Endian | None = None


class Datapath(enum.Enum):
    """Who moves virtio-net packets."""

    VHOST = "vhost"
    USERSPACE = "userspace"


@attrs.frozen(kw_only=True)
class NetBackendChoice:
    """The data path virtio-net ends up with, and why not vhost if not."""

    datapath: Datapath
    start: VhostStart | None = None
    reason: str | None = None


def _name(big_endian: bool) -> str:
    return "big-endian" if big_endian else "little-endian"


def start_vhost(
    subject: EndianSubject, backend: VhostNetBackend, *, host_big_endian: bool | None = None
) -> VhostStart:
    """Start vhost for a device, or raise VhostError if its rings would be misread.

    VERSION_1 devices always start: the kernel knows they are little-endian
    (``vhost_needs_vring_endian`` is false for them, on any host).  A legacy
    device whose byte order differs from the host's needs
    VHOST_SET_VRING_ENDIAN; without it (``supports_cross_endian`` False,
    the 2.2 situation) the start is refused.
    """
    if subject.guest_features >> VIRTIO_F_VERSION_1 & 1:
        # the kernel treats VERSION_1 rings as LE itself, whatever the host
        return VhostStart()
    host = HOST_BIG_ENDIAN if host_big_endian is None else host_big_endian
    device = is_big_endian(subject)
    if device == host:
        return VhostStart()
    if not backend.supports_cross_endian:
        raise VhostError(
            f"{backend.name} does not support cross-endian: device is {_name(device)}, host is {_name(host)}"
        )
    return VhostStart(vring_endian=Endian.of(device))


def select_net_backend(
    subject: EndianSubject, backend: VhostNetBackend | None, *, host_big_endian: bool | None = None
) -> NetBackendChoice:
    """Pick the data path: vhost if configured and able, else userspace (QEMU's fallback).

    QEMU reports "unable to start vhost net ... falling back on userspace
    virtio" and carries on; so does this: it never raises VhostError.
    """
    if backend is None:
        return NetBackendChoice(datapath=Datapath.USERSPACE, reason="no vhost backend configured")
    try:
        start = start_vhost(subject, backend, host_big_endian=host_big_endian)
    except VhostError as error:
        return NetBackendChoice(datapath=Datapath.USERSPACE, reason=str(error))
    return NetBackendChoice(datapath=Datapath.VHOST, start=start)
