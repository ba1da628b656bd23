"""virtio-balloon's own part (hw/virtio/virtio-balloon.c, ``vmstate_virtio_balloon_device``)."""

from __future__ import annotations

from typing import Any

from vmstate import Subsection, field, state
from vmstate.description import Description
from vmstate.kinds import UINT32
from vmstate.typed import description_of, received_subsections

from .parts import DescribedPart

__all__ = ["VirtIOBalloon", "VIRTIO_BALLOON"]


# QEMU sends each when the guest negotiated its feature (virtio_vdev_has_feature), which the device
# part cannot see: a state loaded with the subsection writes it again, one built here when asked.
def _free_page_hint(balloon: "VirtIOBalloon") -> bool:
    return balloon.free_page_hint or "virtio-balloon-device/free-page-report" in balloon.received_subsections


def _page_poison(balloon: "VirtIOBalloon") -> bool:
    return balloon.page_poison or "virtio-balloon-device/page-poison" in balloon.received_subsections


@state(
    name="virtio-balloon-device",
    version=1,
    minimum_version=1,
    subsections=(
        # the name says "report" though the feature is free page *hinting*
        Subsection("virtio-balloon-device/free-page-report", 1, needed=_free_page_hint, minimum_version=1),
        Subsection("virtio-balloon-device/page-poison", 1, needed=_page_poison, minimum_version=1),
    ),
)
class VirtIOBalloon:
    """The balloon's target and actual size, in 4 KiB pages."""

    #: not on the wire: the device offers VIRTIO_BALLOON_F_FREE_PAGE_HINT
    free_page_hint: bool = False
    #: not on the wire: the device offers VIRTIO_BALLOON_F_PAGE_POISON
    page_poison: bool = False
    #: not on the wire: the subsections this state was loaded with
    received_subsections: frozenset[str] = received_subsections()
    num_pages: int = field(UINT32)
    actual: int = field(UINT32)
    free_page_hint_cmd_id: int = field(UINT32, subsection="virtio-balloon-device/free-page-report")
    free_page_hint_status: int = field(UINT32, subsection="virtio-balloon-device/free-page-report")
    poison_val: int = field(UINT32, subsection="virtio-balloon-device/page-poison")


def _description(_config: dict[str, Any]) -> Description:
    return description_of(VirtIOBalloon)


VIRTIO_BALLOON = DescribedPart(savevm_name="virtio-balloon", version=1, minimum_version=1, description=_description)
