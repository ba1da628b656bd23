"""virtio-input (hw/input/virtio-input.c): keyboard, mouse, tablet and input-host share one section.

``vmstate_virtio_input`` is ``VMSTATE_VIRTIO_DEVICE`` alone and the device
class sets no ``vmsd`` of its own: nothing beyond the common part migrates
(two queues, ``evt`` and ``sts``, of 64 entries each).  The event queue
and the config select are rebuilt by the destination.
"""

from __future__ import annotations

from .parts import NoPart

__all__ = ["VIRTIO_INPUT"]

VIRTIO_INPUT = NoPart(savevm_name="virtio-input")
