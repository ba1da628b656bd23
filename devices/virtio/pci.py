"""The virtio-pci transport's part of a virtio section (hw/virtio/virtio-pci.c).

``virtio_pci_save_config`` writes the PCI device state (``vmstate_pci_device``,
or ``vmstate_pcie_device`` with a 4 KiB config space), the MSI-X table and
pending-bit array (``msix_save``, hw/pci/msix.c) and the config vector; each
queue then adds its MSI-X vector.  The vector count is not on the wire: QEMU
takes it from its own device configuration.  We read it from the MSI-X
capability inside the saved config space, so a section decodes on its own.
"""

from __future__ import annotations

from vmstate import Subsection, field, state, struct
from vmstate.errors import MalformedError
from vmstate.kinds import INT32, INT32_LE, UINT8, UINT16, UINT32, array, buffer, unused

__all__ = [
    "PciDevice",
    "PcieDevice",
    "VirtioPciModernQueue",
    "VirtioPciExtraState",
    "PCI_CONFIG_SPACE_SIZE",
    "PCIE_CONFIG_SPACE_SIZE",
    "pci_capabilities",
    "msix_vectors",
    "is_express",
]

PCI_CONFIG_SPACE_SIZE = 256
PCIE_CONFIG_SPACE_SIZE = 4096
VIRTIO_QUEUE_MAX = 1024

_CAP_POINTER = 0x34
_STATUS = 0x06
_STATUS_CAP_LIST = 0x10
_CAP_ID_EXPRESS = 0x10
_CAP_ID_MSIX = 0x11
_MSIX_TABLE_SIZE_MASK = 0x07FF
#: a capability is at least 4 bytes in the 192 after the header: no list is longer
_MAX_CAPABILITIES = 48


@state(name="PCIDevice", version=2, minimum_version=1)
class PciDevice:
    """QEMU's ``vmstate_pci_device`` (hw/pci/pci.c) for a conventional PCI device."""

    version_id: int = field(INT32_LE)
    config: bytes = field(buffer(PCI_CONFIG_SPACE_SIZE, type_name="pci config"))
    irq_state: list[int] = field(array(INT32, 4))


@state(name="PCIEDevice", version=2, minimum_version=1)
class PcieDevice:
    """QEMU's ``vmstate_pcie_device``: the same with the 4 KiB extended config space."""

    version_id: int = field(INT32_LE)
    config: bytes = field(buffer(PCIE_CONFIG_SPACE_SIZE, type_name="pci config"))
    irq_state: list[int] = field(array(INT32, 4))


@state(name="virtio_pci/modern_queue_state", version=1, minimum_version=1)
class VirtioPciModernQueue:
    """QEMU's ``vmstate_virtio_pci_modern_queue_state``: one queue as the modern BAR sees it."""

    num: int = field(UINT16)
    #: the high byte of what was once a 16-bit ``enabled``
    reserved: bytes = field(unused(1))
    enabled: int = field(UINT8)
    desc: list[int] = field(array(UINT32, 2))
    avail: list[int] = field(array(UINT32, 2))
    used: list[int] = field(array(UINT32, 2))


def _modern(proxy: "VirtioPciExtraState") -> bool:
    return proxy.modern


@state(
    name="virtio_pci",
    version=1,
    minimum_version=1,
    subsections=(Subsection("virtio_pci/modern_state", 1, needed=_modern, minimum_version=1),),
)
class VirtioPciExtraState:
    """QEMU's ``vmstate_virtio_pci``: no fields of its own; the modern BAR state in a subsection.

    It travels inside ``virtio/extra_state`` (``virtio_pci_save_extra_state``).
    """

    #: not on the wire: whether the proxy has the modern (virtio 1.0) interface
    modern: bool = False
    dfselect: int = field(UINT32, subsection="virtio_pci/modern_state")
    gfselect: int = field(UINT32, subsection="virtio_pci/modern_state")
    guest_features: list[int] = field(array(UINT32, 2), subsection="virtio_pci/modern_state")
    vqs: list[VirtioPciModernQueue] = field(
        array(struct(VirtioPciModernQueue), VIRTIO_QUEUE_MAX), subsection="virtio_pci/modern_state"
    )


def pci_capabilities(config: bytes) -> dict[int, int]:
    """Map capability id to offset for the capability list in a saved config space.

    A corrupt list (a loop, a pointer into the header) is a ``MalformedError``,
    since a real device never saves one.
    """
    if len(config) < PCI_CONFIG_SPACE_SIZE:
        raise MalformedError(f"PCI config space has {len(config)} bytes, expected at least 256")
    found: dict[int, int] = {}
    if not config[_STATUS] & _STATUS_CAP_LIST:
        return found
    pointer = config[_CAP_POINTER] & 0xFC
    for _ in range(_MAX_CAPABILITIES):
        if pointer == 0:
            return found
        if pointer < 0x40:
            raise MalformedError(f"PCI capability pointer 0x{pointer:02x} points into the header")
        found.setdefault(config[pointer], pointer)
        pointer = config[pointer + 1] & 0xFC
    raise MalformedError("PCI capability list does not end (a loop)")


def msix_vectors(config: bytes) -> int:
    """The MSI-X table size the config space announces, 0 without MSI-X."""
    offset = pci_capabilities(config).get(_CAP_ID_MSIX)
    if offset is None:
        return 0
    control = int.from_bytes(config[offset + 2 : offset + 4], "little")
    return (control & _MSIX_TABLE_SIZE_MASK) + 1


def is_express(config: bytes) -> bool:
    """Whether the config space carries a PCI Express capability (then it is 4 KiB)."""
    return _CAP_ID_EXPRESS in pci_capabilities(config)
