"""Virtio device models: the common save/load, transports, and one module per device."""

from .balloon import VIRTIO_BALLOON, VirtIOBalloon
from .blk import VIRTIO_BLK, VirtIOBlockRequest
from .net import VIRTIO_NET, VirtIONet
from .ninep import VIRTIO_9P
from .rng import VIRTIO_RNG
from .save_load import DeviceContext, VirtioCodec, VirtioDeviceClass, virtio_field
from .scsi import VIRTIO_SCSI
from .sections import DEVICE_CLASSES, section_description, virtio_section
from .serial import VIRTIO_SERIAL, VirtIOSerial, VirtIOSerialPort

__all__ = [
    "VIRTIO_BALLOON", "VIRTIO_BLK", "VIRTIO_NET", "VIRTIO_9P", "VIRTIO_RNG", "VIRTIO_SCSI", "VIRTIO_SERIAL",
    "VirtIOBalloon", "VirtIOBlockRequest", "VirtIONet", "VirtIOSerial", "VirtIOSerialPort",
    "DeviceContext", "VirtioCodec", "VirtioDeviceClass", "virtio_field",
    "DEVICE_CLASSES", "section_description", "virtio_section",
]
