"""Virtio device models: the common save/load, transports, and one module per device.

The names below are imported when first used (``vmstate._lazy``): importing
one module of this package (``devices.virtio.pci``) does not import every device.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vmstate import _lazy

if TYPE_CHECKING:
    from .balloon import VIRTIO_BALLOON, VirtIOBalloon
    from .blk import VIRTIO_BLK, VirtIOBlockRequest
    from .net import VIRTIO_NET, VirtIONet
    from .ninep import VIRTIO_9P
    from .rng import VIRTIO_RNG
    from .save_load import DeviceContext, VirtioCodec, VirtioDeviceClass, virtio_field
    from .scsi import VIRTIO_SCSI
    from .sections import DEVICE_CLASSES, section_description, virtio_section
    from .serial import VIRTIO_SERIAL, VirtIOSerial, VirtIOSerialPort

_NAMES = _lazy.exports({
    ".balloon": ("VIRTIO_BALLOON", "VirtIOBalloon"),
    ".blk": ("VIRTIO_BLK", "VirtIOBlockRequest"),
    ".net": ("VIRTIO_NET", "VirtIONet"),
    ".ninep": ("VIRTIO_9P",),
    ".rng": ("VIRTIO_RNG",),
    ".save_load": ("DeviceContext", "VirtioCodec", "VirtioDeviceClass", "virtio_field"),
    ".scsi": ("VIRTIO_SCSI",),
    ".sections": ("DEVICE_CLASSES", "section_description", "virtio_section"),
    ".serial": ("VIRTIO_SERIAL", "VirtIOSerial", "VirtIOSerialPort"),
})

__all__ = [
    "VIRTIO_BALLOON", "VIRTIO_BLK", "VIRTIO_NET", "VIRTIO_9P", "VIRTIO_RNG", "VIRTIO_SCSI", "VIRTIO_SERIAL",
    "VirtIOBalloon", "VirtIOBlockRequest", "VirtIONet", "VirtIOSerial", "VirtIOSerialPort",
    "DeviceContext", "VirtioCodec", "VirtioDeviceClass", "virtio_field",
    "DEVICE_CLASSES", "section_description", "virtio_section",
]


def __getattr__(name: str) -> Any:
    return _lazy.load(__name__, _NAMES, name)
