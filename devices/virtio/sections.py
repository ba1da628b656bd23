"""Find the description of a virtio device section from its idstr and version."""

from __future__ import annotations

from functools import lru_cache

import attrs

from vmstate.description import Description, Field

from .balloon import VIRTIO_BALLOON
from .blk import VIRTIO_BLK
from .gpu import GPU_FIELD, VIRTIO_GPU
from .input import VIRTIO_INPUT
from .iommu import VIRTIO_IOMMU
from .mem import VIRTIO_MEM
from .net import VIRTIO_NET, VIRTIO_NET_MULTIQUEUE_BACKEND
from .ninep import VIRTIO_9P
from .rng import VIRTIO_RNG
from .save_load import VirtioDeviceClass, virtio_field
from .scsi import VIRTIO_SCSI
from .serial import VIRTIO_SERIAL
from .transport import MMIO, PCI, Transport, transport_for_idstr

__all__ = ["DEVICE_CLASSES", "virtio_section", "section_description"]

#: every virtio device class we model, by savevm name
DEVICE_CLASSES: dict[str, VirtioDeviceClass] = {
    cls.savevm_name: cls
    for cls in (
        VIRTIO_NET, VIRTIO_BLK, VIRTIO_SERIAL, VIRTIO_BALLOON, VIRTIO_RNG, VIRTIO_SCSI, VIRTIO_9P,
        VIRTIO_INPUT, VIRTIO_GPU, VIRTIO_IOMMU, VIRTIO_MEM,
    )
}


#: layouts a stream cannot tell apart before the bytes are read, tried after the first
_ALTERNATIVES: dict[str, tuple[VirtioDeviceClass, ...]] = {"virtio-net": (VIRTIO_NET_MULTIQUEUE_BACKEND,)}

#: section fields after ``virtio`` (devices whose vmsd adds a field of its own)
_TRAILING_FIELDS: dict[str, tuple[Field, ...]] = {"virtio-gpu": (GPU_FIELD,)}


def _section(device_class: VirtioDeviceClass, transport: Transport) -> Description:
    description = virtio_field(device_class, transport)
    trailing = _TRAILING_FIELDS.get(device_class.savevm_name, ())
    return attrs.evolve(description, fields=description.fields + trailing) if trailing else description


@lru_cache(maxsize=None)
def section_description(savevm_name: str, transport_name: str) -> Description:
    """The section description for a device class on a transport (``pci`` or ``mmio``)."""
    transport: Transport = PCI if transport_name == "pci" else MMIO
    alternatives = tuple(_section(cls, transport) for cls in _ALTERNATIVES.get(savevm_name, ()))
    return attrs.evolve(_section(DEVICE_CLASSES[savevm_name], transport), alternatives=alternatives)


def virtio_section(idstr: str, instance_id: int, version: int) -> Description | None:
    """The description for a section, or None if it is not a virtio device we model."""
    name = idstr.rsplit("/", 1)[-1]
    device_class = DEVICE_CLASSES.get(name)
    transport = transport_for_idstr(idstr)
    if device_class is None or transport is None:
        return None
    if not device_class.minimum_version <= version <= device_class.version:
        return None
    return section_description(name, transport.name)
