"""The virtio-mmio transport's part of a virtio section (hw/virtio/virtio-mmio.c).

``virtio_mmio_save_config`` writes three selector/shift registers; the bus has
variable vring alignment, so every queue also carries its ``align``; there
is no per-queue transport state.  A virtio-mmio version 2 (non-legacy) proxy
adds its register view of the queues in ``virtio/extra_state``.
"""

from __future__ import annotations

from vmstate import Subsection, field, state, struct
from vmstate.kinds import BOOL, UINT16, UINT32, array

__all__ = ["VirtioMmioConfig", "VirtioMmioQueue", "VirtioMmioExtraState", "VIRTIO_MMIO_PREFIX"]

#: idstrs of sections on a virtio-mmio transport start with this qdev path
VIRTIO_MMIO_PREFIX = "virtio-mmio@"
VIRTIO_QUEUE_MAX = 1024


@state(name="virtio-mmio config", version=1, minimum_version=1)
class VirtioMmioConfig:
    """What ``virtio_mmio_save_config`` writes (not a QEMU vmsd: three ``qemu_put_be32``)."""

    host_features_sel: int = field(UINT32)
    guest_features_sel: int = field(UINT32)
    guest_page_shift: int = field(UINT32)


@state(name="virtio_mmio/queue_state", version=1, minimum_version=1)
class VirtioMmioQueue:
    """QEMU's ``vmstate_virtio_mmio_queue_state``."""

    num: int = field(UINT16)
    enabled: bool = field(BOOL)
    desc: list[int] = field(array(UINT32, 2))
    avail: list[int] = field(array(UINT32, 2))
    used: list[int] = field(array(UINT32, 2))


def _modern(proxy: "VirtioMmioExtraState") -> bool:
    return proxy.modern


@state(
    name="virtio_mmio",
    version=1,
    minimum_version=1,
    subsections=(Subsection("virtio_mmio/state", 1, needed=_modern, minimum_version=1),),
)
class VirtioMmioExtraState:
    """QEMU's ``vmstate_virtio_mmio``: the version 2 register state in a subsection."""

    #: not on the wire: whether the proxy is virtio-mmio version 2 (``force-legacy=false``)
    modern: bool = False
    guest_features: list[int] = field(array(UINT32, 2), subsection="virtio_mmio/state")
    vqs: list[VirtioMmioQueue] = field(
        array(struct(VirtioMmioQueue), VIRTIO_QUEUE_MAX), subsection="virtio_mmio/state"
    )
