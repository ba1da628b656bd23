"""How text output shows the fields of every description we have (``vmstate.display``): dump's and diff's."""

from __future__ import annotations

import functools

from vmstate.display import DisplayTable, display_table

__all__ = ["display_kinds"]


@functools.cache
def display_kinds() -> DisplayTable:
    """The display table of our registry, both virtio transports and QEMU's configuration section."""
    from devices import DEFAULT_REGISTRY
    from devices.virtio.common import virtio_description
    from streams.qemu.configuration import CONFIGURATION

    descriptions = [*DEFAULT_REGISTRY.descriptions(), virtio_description("pci"), virtio_description("mmio"), CONFIGURATION]
    return display_table(descriptions)
