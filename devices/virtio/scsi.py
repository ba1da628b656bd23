"""virtio-scsi (hw/scsi/virtio-scsi.c): no part of its own.

In-flight requests travel in each SCSI device's section (the bus's
``save_request`` hook), not here.
"""

from __future__ import annotations

from .parts import NoPart

__all__ = ["VIRTIO_SCSI"]

VIRTIO_SCSI = NoPart(savevm_name="virtio-scsi")
