"""virtio-blk headers and config fields in device byte order (hw/block/virtio-blk.c)."""

from __future__ import annotations

import attrs

from ._fixed import _Fixed, _pair, _u

__all__ = [
    "BlkOutHdr", "BlkConfig", "VIRTIO_BLK_T_IN", "VIRTIO_BLK_T_OUT", "VIRTIO_BLK_T_FLUSH", "VIRTIO_BLK_T_GET_ID",
]


VIRTIO_BLK_T_IN = 0
VIRTIO_BLK_T_OUT = 1
VIRTIO_BLK_T_FLUSH = 4
VIRTIO_BLK_T_GET_ID = 8


@attrs.frozen(kw_only=True)
class BlkOutHdr(_Fixed):
    """``struct virtio_blk_outhdr`` (16 bytes): QEMU reads type and sector with virtio_ldl_p/ldq_p."""

    _CODECS = _pair("IIQ")

    type: int = attrs.field(validator=_u(32))
    ioprio: int = attrs.field(default=0, validator=_u(32))
    sector: int = attrs.field(default=0, validator=_u(64))


@attrs.frozen(kw_only=True)
class BlkConfig(_Fixed):
    """``struct virtio_blk_config`` up to and including ``wce`` (33 bytes).

    Later fields (num_queues, discard and write-zeroes limits) are not
    modelled.  Legacy devices expose capacity and the size fields in device
    order (QEMU's get_config uses virtio_stq_p / virtio_stl_p / virtio_stw_p).
    """

    _CODECS = _pair("QIIHBBIBBHIB")

    #: in 512-byte sectors
    capacity: int = attrs.field(validator=_u(64))
    size_max: int = attrs.field(default=0, validator=_u(32))
    seg_max: int = attrs.field(default=0, validator=_u(32))
    cylinders: int = attrs.field(default=0, validator=_u(16))
    heads: int = attrs.field(default=0, validator=_u(8))
    sectors: int = attrs.field(default=0, validator=_u(8))
    blk_size: int = attrs.field(default=512, validator=_u(32))
    physical_block_exp: int = attrs.field(default=0, validator=_u(8))
    alignment_offset: int = attrs.field(default=0, validator=_u(8))
    min_io_size: int = attrs.field(default=0, validator=_u(16))
    opt_io_size: int = attrs.field(default=0, validator=_u(32))
    wce: int = attrs.field(default=0, validator=_u(8))
