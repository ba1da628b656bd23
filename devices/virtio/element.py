"""``VirtQueueElement`` as QEMU migrates an in-flight request (hw/virtio/virtio.c).

``qemu_put_virtqueue_element`` copies a ``VirtQueueElementOld`` struct as raw
host memory: three ``unsigned int`` counters, 4 bytes of padding, then
1024-entry arrays of guest addresses and iovecs (``iov_base`` zeroed so no
host address leaks).  Being a memory copy it is in *host* byte order; we
model the little-endian LP64 hosts (x86_64, aarch64) QEMU 7.2 runs on.
With a packed ring a big-endian ``ndescs`` comes first.
"""

from __future__ import annotations

from vmstate import field, state, struct
from vmstate.description import Int
from vmstate.kinds import array, unused

__all__ = ["IoVec", "VirtQueueElement", "VIRTQUEUE_MAX_SIZE", "ELEMENT_SIZE"]

VIRTQUEUE_MAX_SIZE = 1024
U32_HOST = Int(width=4, little=True)
U64_HOST = Int(width=8, little=True)


@state(name="iovec", version=1, minimum_version=1)
class IoVec:
    """``struct iovec`` on an LP64 host: base (always 0 in a stream) and length."""

    iov_base: int = field(U64_HOST)
    iov_len: int = field(U64_HOST)


@state(name="VirtQueueElementOld", version=1, minimum_version=1)
class VirtQueueElement:
    """One popped descriptor chain: its head index and the buffers it maps."""

    index: int = field(U32_HOST)
    out_num: int = field(U32_HOST)
    in_num: int = field(U32_HOST)
    padding: bytes = field(unused(4))
    in_addr: list[int] = field(array(U64_HOST, VIRTQUEUE_MAX_SIZE))
    out_addr: list[int] = field(array(U64_HOST, VIRTQUEUE_MAX_SIZE))
    in_sg: list[IoVec] = field(array(struct(IoVec), VIRTQUEUE_MAX_SIZE))
    out_sg: list[IoVec] = field(array(struct(IoVec), VIRTQUEUE_MAX_SIZE))


#: bytes one element occupies on the wire (49168 on LP64)
ELEMENT_SIZE = 12 + 4 + 2 * 8 * VIRTQUEUE_MAX_SIZE + 2 * 16 * VIRTQUEUE_MAX_SIZE
