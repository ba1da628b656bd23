"""virtio-9p (hw/9pfs/virtio-9p-device.c): no part of its own.

QEMU blocks migration while the guest has the share mounted (a migration
blocker added on attach); an unmounted device migrates the common part only.
"""

from __future__ import annotations

from .parts import NoPart

__all__ = ["VIRTIO_9P"]

VIRTIO_9P = NoPart(savevm_name="virtio-9p")
