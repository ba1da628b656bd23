"""Virtio feature bits the migration layout depends on (include/standard-headers/linux/virtio_*.h)."""

from __future__ import annotations

__all__ = [
    "VIRTIO_F_VERSION_1",
    "VIRTIO_F_RING_PACKED",
    "VIRTIO_F_RING_RESET",
    "VIRTIO_NET_F_CTRL_GUEST_OFFLOADS",
    "VIRTIO_NET_F_MRG_RXBUF",
    "VIRTIO_NET_F_CTRL_VQ",
    "VIRTIO_NET_F_MQ",
    "has_feature",
]

#: virtio 1.0: every accessor is little-endian once negotiated
VIRTIO_F_VERSION_1 = 32
VIRTIO_F_RING_PACKED = 34
#: on by default in 7.2, which is why legacy devices send virtio/64bit_features
VIRTIO_F_RING_RESET = 40

VIRTIO_NET_F_CTRL_GUEST_OFFLOADS = 2
VIRTIO_NET_F_MRG_RXBUF = 15
VIRTIO_NET_F_CTRL_VQ = 17
VIRTIO_NET_F_MQ = 22


def has_feature(features: int, bit: int) -> bool:
    """Whether ``bit`` is set in a feature word."""
    return bool(features >> bit & 1)
