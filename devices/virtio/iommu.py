"""virtio-iommu's own part (hw/virtio/virtio-iommu.c, ``vmstate_virtio_iommu_device``, version 2).

The domains live in a GTree keyed directly by domain id; each domain holds
a GTree of mappings (an interval key, a mapping value), a QList of the
endpoints attached to it and, since version 2, its bypass flag.  The
device's global bypass flag follows the tree.  Endpoints are not sent on
their own: the loader rebuilds them from the domains.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import attrs

from vmstate import field, state
from vmstate.description import Custom, Description, Record
from vmstate.kinds import BOOL, UINT8, UINT32, UINT64
from vmstate.typed import description_of

from .containers import GTree, QList
from .parts import DescribedPart

__all__ = ["VirtIOIOMMU", "VIRTIO_IOMMU", "IOMMUDomain", "IOMMUInterval", "IOMMUMapping", "IOMMUEndpoint"]


@state(name="interval", version=1, minimum_version=1)
class IOMMUInterval:
    """A mapping's key: the IOVA range, both ends inclusive."""

    low: int = field(UINT64)
    high: int = field(UINT64)


@state(name="mapping", version=1, minimum_version=1)
class IOMMUMapping:
    """Where an IOVA range maps to and with which VIRTIO_IOMMU_MAP_F_* flags."""

    phys_addr: int = field(UINT64)
    flags: int = field(UINT32)


@state(name="endpoint", version=1, minimum_version=1)
class IOMMUEndpoint:
    """An attached endpoint: its id (the PCI requester id)."""

    id: int = field(UINT32)


@lru_cache(maxsize=1)
def _mappings() -> GTree:
    return GTree(value=description_of(IOMMUMapping), key=description_of(IOMMUInterval))


@lru_cache(maxsize=1)
def _endpoints() -> QList:
    return QList(element=description_of(IOMMUEndpoint))


@state(name="domain", version=2, minimum_version=2)
class IOMMUDomain:
    """One domain: id, mappings (nodes of ``key`` interval, ``value`` mapping), endpoints, bypass."""

    id: int = field(UINT32)
    mappings: list[Record] = field(Custom(codec=_mappings(), type_name="gtree"), default=attrs.Factory(list))
    endpoint_list: list[Record] = field(Custom(codec=_endpoints(), type_name="qlist"), default=attrs.Factory(list))
    bypass: bool = field(BOOL, since_version=2)


@lru_cache(maxsize=1)
def _domains() -> GTree:
    return GTree(value=description_of(IOMMUDomain))


@state(name="virtio-iommu-device", version=2, minimum_version=2)
class VirtIOIOMMU:
    """The domains (nodes of ``key`` domain id, ``value`` domain) and the device's bypass flag."""

    domains: list[Record] = field(Custom(codec=_domains(), type_name="gtree"), default=attrs.Factory(list))
    #: config.bypass: untranslated DMA for endpoints in no domain
    bypass: int = field(UINT8, since_version=2)


def _description(_config: dict[str, Any]) -> Description:
    return description_of(VirtIOIOMMU)


VIRTIO_IOMMU = DescribedPart(savevm_name="virtio-iommu", version=2, minimum_version=2, description=_description)
