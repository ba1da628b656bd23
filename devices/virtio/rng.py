"""virtio-rng (hw/virtio/virtio-rng.c): nothing beyond the common part migrates."""

from __future__ import annotations

from .parts import NoPart

__all__ = ["VIRTIO_RNG"]

VIRTIO_RNG = NoPart(savevm_name="virtio-rng")
