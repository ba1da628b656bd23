"""virtio-net's own part (hw/net/virtio-net.c, ``vmstate_virtio_net_device``).

QEMU 7.2 describes it with a vmsd whose bytes equal the hand-written
``virtio_net_save_device`` of QEMU 2.2; the 2.2 loader accepted versions 2 to
11, gating fields by version, and so do we.

The multiqueue fields (``max_queue_pairs``, ``curr_queue_pairs``, the other
pairs' ``tx_waiting``) are on the wire when ``max_queue_pairs > 1``
(``max_queue_pairs_gt_1`` in hw/net/virtio-net.c).  ``max_queue_pairs`` is
the number of datapath queues of the *backend* (``-netdev tap,queues=N``),
set at realize; the ``mq`` property only offers the feature.  A guest that
never negotiated ``VIRTIO_NET_F_MQ`` leaves three queues (one pair and the
control queue) whatever the backend, so the queue count proves multiqueue
only when it exceeds three.  With three queues the stream cannot say, so the
section has an alternative description that assumes a multiqueue backend,
tried when the first does not fit (``Description.alternatives``).  Saving
follows QEMU: the fields are written when the state's ``max_queue_pairs``
exceeds one.
"""

from __future__ import annotations

from typing import Any

from vmstate import Subsection, field, state
from vmstate.description import Description
from vmstate.kinds import BOOL, UINT8, UINT16, UINT32, UINT64, array, buffer, varray, vbuffer
from vmstate.typed import description_of

from .features import VIRTIO_NET_F_CTRL_GUEST_OFFLOADS, has_feature
from .parts import DescribedPart

__all__ = ["VirtIONet", "VIRTIO_NET", "VIRTIO_NET_MULTIQUEUE_BACKEND", "ETH_ALEN", "MAX_VLAN"]

ETH_ALEN = 6
MAX_VLAN = 1 << 12
RSS_MAX_KEY_SIZE = 40


def _multiqueue(view: Any, version: int) -> bool:
    # Saving, and loading once max_queue_pairs is read: QEMU's own test on the value.
    value = getattr(view, "max_queue_pairs", None)
    if isinstance(value, int):
        return value > 1
    # Loading, before it is read: what the queue count (or the alternative) says of the backend;
    # a bare VirtIONet outside a virtio section has one queue pair.
    return bool(getattr(view, "multiqueue_backend", False))


def _guest_offloads(view: Any, version: int) -> bool:
    return has_feature(getattr(view, "guest_features_lo", 0), VIRTIO_NET_F_CTRL_GUEST_OFFLOADS)


def _v8_on(view: Any, version: int) -> bool:
    return version >= 8


def _v4_to_7(view: Any, version: int) -> bool:
    return 4 <= version < 8


def _rss_needed(net: "VirtIONet") -> bool:
    return bool(net.rss_enabled)


def _keep_old_flags(net: "VirtIONet") -> None:
    net.promisc_v4, net.allmulti_v4 = net.promisc, net.allmulti


def _adopt_old_flags(net: "VirtIONet", version: int) -> None:
    if 4 <= version < 8:
        net.promisc, net.allmulti = net.promisc_v4, net.allmulti_v4


@state(
    name="virtio-net-device",
    version=11,
    minimum_version=2,
    subsections=(Subsection("virtio-net-device/rss", 1, needed=_rss_needed, minimum_version=1),),
    pre_save=_keep_old_flags,
    post_load=_adopt_old_flags,
)
class VirtIONet:
    """The virtio-net device state that migrates (``VirtIONet`` in QEMU)."""

    mac: bytes = field(buffer(ETH_ALEN, type_name="mac"), default=bytes.fromhex("525400123456"))
    #: tx_waiting of queue pair 0
    tx_waiting: int = field(UINT32)
    mergeable_rx_bufs: int = field(UINT32)
    status: int = field(UINT16, since_version=3, default=1)
    promisc: int = field(UINT8, exists=_v8_on, default=1)
    #: versions 4 to 7 sent the flags as be32
    promisc_v4: int = field(UINT32, exists=_v4_to_7, default=1)
    allmulti: int = field(UINT8, exists=_v8_on)
    allmulti_v4: int = field(UINT32, exists=_v4_to_7)
    mac_table_in_use: int = field(UINT32, since_version=5)
    mac_table_macs: bytes = field(vbuffer("mac_table_in_use", multiply=ETH_ALEN), since_version=5)
    #: one bit per VLAN id, copied as host-order 32-bit words
    vlans: bytes = field(buffer(MAX_VLAN >> 3, type_name="vlans"), since_version=6)
    has_vnet_hdr: int = field(UINT32, since_version=7)
    mac_table_multi_overflow: int = field(UINT8, since_version=9)
    mac_table_uni_overflow: int = field(UINT8, since_version=9)
    alluni: int = field(UINT8, since_version=10)
    nomulti: int = field(UINT8, since_version=10)
    nouni: int = field(UINT8, since_version=10)
    nobcast: int = field(UINT8, since_version=10)
    has_ufo: int = field(UINT8, since_version=11)
    max_queue_pairs: int = field(UINT16, exists=_multiqueue)
    curr_queue_pairs: int = field(UINT16, exists=_multiqueue)
    #: tx_waiting of queue pairs 1 .. curr_queue_pairs - 1
    tx_waiting_more: list[int] = field(varray(UINT32, "curr_queue_pairs", adjust=-1), exists=_multiqueue)
    curr_guest_offloads: int = field(UINT64, exists=_guest_offloads)
    rss_enabled: bool = field(BOOL, subsection="virtio-net-device/rss")
    rss_redirect: bool = field(BOOL, subsection="virtio-net-device/rss")
    rss_populate_hash: bool = field(BOOL, subsection="virtio-net-device/rss")
    rss_hash_types: int = field(UINT32, subsection="virtio-net-device/rss")
    rss_indirections_len: int = field(UINT16, subsection="virtio-net-device/rss")
    rss_default_queue: int = field(UINT16, subsection="virtio-net-device/rss")
    rss_key: list[int] = field(array(UINT8, RSS_MAX_KEY_SIZE), subsection="virtio-net-device/rss")
    rss_indirections_table: list[int] = field(
        varray(UINT16, "rss_indirections_len"), subsection="virtio-net-device/rss"
    )


def _configure(common: dict[str, Any]) -> dict[str, Any]:
    # rx/tx per pair plus the control queue (virtio_net_change_num_queue_pairs): more than
    # three queues means the guest negotiated several pairs, so the backend has them
    return {"multiqueue_backend": common["num_queues"] > 3}


def _multiqueue_backend(_common: dict[str, Any]) -> dict[str, Any]:
    return {"multiqueue_backend": True}


def _description(_config: dict[str, Any]) -> Description:
    return description_of(VirtIONet)


VIRTIO_NET = DescribedPart(
    savevm_name="virtio-net", version=11, minimum_version=2, description=_description, configure=_configure
)
#: the same device on a backend with several queue pairs that the guest did not negotiate
VIRTIO_NET_MULTIQUEUE_BACKEND = DescribedPart(
    savevm_name="virtio-net", version=11, minimum_version=2, description=_description, configure=_multiqueue_backend
)
