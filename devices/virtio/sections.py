"""Find the description of a virtio device section from its idstr and version.

Each device's module is imported when a section of that device is first
looked up (``_DEVICES``): a stream without virtio-gpu does not pay for it.
"""

from __future__ import annotations

import importlib
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import attrs

from vmstate.description import Description, Field

if TYPE_CHECKING:
    from .save_load import VirtioDeviceClass
    from .transport import Transport

__all__ = ["DEVICE_CLASSES", "DEVICE_NAMES", "device_class", "virtio_section", "section_description"]

#: every virtio device class we model, by savevm name: (module, attribute); ``DEVICE_CLASSES`` has them imported
_DEVICES: dict[str, tuple[str, str]] = {
    "virtio-net": (".net", "VIRTIO_NET"),
    "virtio-blk": (".blk", "VIRTIO_BLK"),
    "virtio-console": (".serial", "VIRTIO_SERIAL"),
    "virtio-balloon": (".balloon", "VIRTIO_BALLOON"),
    "virtio-rng": (".rng", "VIRTIO_RNG"),
    "virtio-scsi": (".scsi", "VIRTIO_SCSI"),
    "virtio-9p": (".ninep", "VIRTIO_9P"),
    "virtio-input": (".input", "VIRTIO_INPUT"),
    "virtio-gpu": (".gpu", "VIRTIO_GPU"),
    "virtio-iommu": (".iommu", "VIRTIO_IOMMU"),
    "virtio-mem": (".mem", "VIRTIO_MEM"),
}

#: the savevm names of ``DEVICE_CLASSES``, in the same order, without importing a device
DEVICE_NAMES: tuple[str, ...] = tuple(_DEVICES)

#: layouts a stream cannot tell apart before the bytes are read, tried after the first
_ALTERNATIVES: dict[str, tuple[tuple[str, str], ...]] = {
    "virtio-net": ((".net", "VIRTIO_NET_MULTIQUEUE_BACKEND"),),
    "virtio-mem": ((".mem", "VIRTIO_MEM_EARLY_MIGRATION"),),  # machine types >= 8.2 (x-early-migration)
}

#: section fields after ``virtio`` (devices whose vmsd adds a field of its own)
_TRAILING_FIELDS: dict[str, tuple[tuple[str, str], ...]] = {"virtio-gpu": ((".gpu", "GPU_FIELD"),)}
#: other trailing fields a sender's device property picks, tried after the first: (module, attribute) of a
#: sequence of fields, each one the alternative trailing field
_TRAILING_ALTERNATIVES: dict[str, tuple[str, str]] = {
    "virtio-gpu": (".gpu", "GPU_FIELD_ALTERNATIVES"),  # scanouts with a framebuffer (QEMU >= 9.0)
}


def _imported(where: tuple[str, str]) -> Any:
    module, name = where
    return getattr(importlib.import_module(module, __package__), name)


@lru_cache(maxsize=None)
def device_class(savevm_name: str) -> VirtioDeviceClass:
    """The device class for a savevm name of ``DEVICE_NAMES`` (its module imported now)."""
    found: VirtioDeviceClass = _imported(_DEVICES[savevm_name])
    return found


def __getattr__(name: str) -> Any:
    if name == "DEVICE_CLASSES":  # every device imported: only what lists them all asks for this
        classes = {savevm_name: device_class(savevm_name) for savevm_name in _DEVICES}
        globals()["DEVICE_CLASSES"] = classes
        return classes
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if TYPE_CHECKING:
    #: every virtio device class we model, by savevm name
    DEVICE_CLASSES: dict[str, VirtioDeviceClass]


def _section(
    device_class: VirtioDeviceClass, transport: Transport, trailing: tuple[Field, ...] | None = None
) -> Description:
    from .save_load import virtio_field

    description = virtio_field(device_class, transport)
    if trailing is None:
        trailing = tuple(_imported(at) for at in _TRAILING_FIELDS.get(device_class.savevm_name, ()))
    return attrs.evolve(description, fields=description.fields + trailing) if trailing else description


@lru_cache(maxsize=None)
def section_description(savevm_name: str, transport_name: str) -> Description:
    """The section description for a device class on a transport (``pci`` or ``mmio``)."""
    from .transport import MMIO, PCI

    transport: Transport = PCI if transport_name == "pci" else MMIO
    found = device_class(savevm_name)
    alternatives = tuple(_section(_imported(at), transport) for at in _ALTERNATIVES.get(savevm_name, ()))
    if savevm_name in _TRAILING_ALTERNATIVES:
        alternatives += tuple(_section(found, transport, (f,)) for f in _imported(_TRAILING_ALTERNATIVES[savevm_name]))
    return attrs.evolve(_section(found, transport), alternatives=alternatives)


def virtio_section(idstr: str, instance_id: int, version: int) -> Description | None:
    """The description for a section, or None if it is not a virtio device we model."""
    name = idstr.rsplit("/", 1)[-1]
    if name not in _DEVICES:
        return None
    from .transport import transport_for_idstr

    transport = transport_for_idstr(idstr)
    if transport is None:
        return None
    found = device_class(name)
    if not found.minimum_version <= version <= found.version:
        return None
    return section_description(name, transport.name)
