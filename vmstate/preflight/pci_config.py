"""Which PCI config bytes a load compares with the destination's own (hw/pci/pci.c ``get_pci_config_device``).

QEMU refuses an incoming config byte ``i`` when ``(incoming ^ own) & cmask &
~wmask & ~w1cmask`` is not zero, and names the first such byte with the
three masks.  The masks come from the destination's device: the header's
read-only bytes (``pci_init_cmask``) and every capability, which
``pci_add_capability`` makes compared in full before the capability's own
init opens its writable bits.  The capability list is walked in the
destination's own config bytes.

The writable bits below were read from QEMU's sources and measured on real
QEMU 7.2 and 10.0 (``compat_fixtures/pci_config_masks.py`` flips every
byte and records the byte and masks QEMU names): virtio-pci on a PCI bus and
on a PCI Express root port, legacy and modern.  A capability of another kind,
or any PCI Express extended capability, has masks not known here: it is
reported as unknown, never taken to be unchecked.
"""

from __future__ import annotations

import attrs

__all__ = ["ByteMask", "ConfigMasks", "config_masks", "first_refused_byte"]

_CAP_LIST = 0x34
_FIRST_CAP = 0x40
_CONFIG_END = 0x100
_MAX_CAPS = 48  # (0x100 - 0x40) / 4: more is a loop or garbage

#: pci_init_cmask: header byte -> cmask (wmask and w1cmask 0 on these)
HEADER_CMASK = {0x00: 0xFF, 0x01: 0xFF, 0x02: 0xFF, 0x03: 0xFF, 0x06: 0x10, 0x08: 0xFF, 0x09: 0xFF,
                0x0A: 0xFF, 0x0B: 0xFF, 0x0E: 0xFF, _CAP_LIST: 0xFF}

_PM, _VENDOR, _EXPRESS, _MSIX = 0x01, 0x09, 0x10, 0x11
_VIRTIO_PCI_CFG = 5
#: capability id -> (fixed size, {offset in the capability: (wmask, w1cmask)})
_OPEN_BITS: dict[int, tuple[int, dict[int, tuple[int, int]]]] = {
    _MSIX: (12, {3: (0xC0, 0)}),  # msix_init: MSI-X enable and function mask
    _PM: (8, {4: (0x03, 0)}),  # virtio_pci_realize: PM control's power state
    # pcie_cap_init and the endpoint inits virtio-pci makes: device control and status, link control,
    # FLR; link status is not compared at all (cmask 0); device control 2's bit 15 (10-bit tags off)
    _EXPRESS: (0x3C, {0x08: (0x0F, 0), 0x09: (0x80, 0), 0x0A: (0, 0x0F), 0x10: (0xC0, 0), 0x29: (0x80, 0)}),
}
_EXPRESS_NOT_COMPARED = (0x12, 0x13)
_EXPRESS_V1_SIZE = 0x14


@attrs.frozen
class ByteMask:
    """QEMU's three masks of one config byte."""

    cmask: int
    wmask: int = 0
    w1cmask: int = 0

    @property
    def compared(self) -> int:
        """The bits a load refuses to change."""
        return self.cmask & ~self.wmask & ~self.w1cmask & 0xFF


@attrs.frozen
class ConfigMasks:
    """The masks of a destination device's config bytes, as far as they are known here."""

    masks: dict[int, ByteMask]
    #: capabilities (and extended config) whose masks are not known: a sentence each
    unknown: tuple[str, ...]


def config_masks(own: bytes) -> ConfigMasks:
    """The masks of the device whose config space (as its own stream carries it) is ``own``."""
    masks = {at: ByteMask(cmask) for at, cmask in HEADER_CMASK.items() if at < len(own)}
    unknown: list[str] = []
    seen: set[int] = set()
    at = own[_CAP_LIST] & ~3 if len(own) > _CAP_LIST and own[0x06] & 0x10 else 0
    while at:
        if at < _FIRST_CAP or at + 2 > min(len(own), _CONFIG_END) or at in seen or len(seen) >= _MAX_CAPS:
            unknown.append(f"the capability list (a pointer to {at:#x} that is not a capability)")
            break
        seen.add(at)
        cap, after = own[at], own[at + 1] & ~3
        size = _size(cap, own, at)
        if size is None:
            unknown.append(f"capability {cap:#04x} at {at:#x} (its write masks are not known here)")
        else:
            for offset in range(min(size, _CONFIG_END - at)):
                masks[at + offset] = ByteMask(0xFF, *_open(cap, own, at, offset))
            if cap == _EXPRESS:
                for offset in _EXPRESS_NOT_COMPARED:
                    masks.pop(at + offset, None)
        at = after
    if len(own) > _CONFIG_END + 3 and any(own[_CONFIG_END:_CONFIG_END + 4]):
        unknown.append(f"PCI Express extended capabilities from {_CONFIG_END:#x} (their write masks are not known here)")
    return ConfigMasks(masks, tuple(unknown))


def _size(cap: int, own: bytes, at: int) -> int | None:
    if cap == _VENDOR:
        return own[at + 2] if at + 2 < len(own) and own[at + 2] >= 3 else None
    if cap == _EXPRESS and at + 2 < len(own) and own[at + 2] & 0x0F == 1:
        return _EXPRESS_V1_SIZE
    known = _OPEN_BITS.get(cap)
    return known[0] if known is not None else None


def _open(cap: int, own: bytes, at: int, offset: int) -> tuple[int, int]:
    """(wmask, w1cmask) of byte ``offset`` of the capability at ``at``."""
    if cap == _VENDOR:
        # virtio_pci_modern_regions_init: the PCI config access capability's bar, offset, length and data
        is_cfg = at + 3 < len(own) and own[at + 3] == _VIRTIO_PCI_CFG
        return (0xFF, 0) if is_cfg and (offset == 4 or 8 <= offset < 20) else (0, 0)
    return _OPEN_BITS[cap][1].get(offset, (0, 0))


def first_refused_byte(incoming: bytes, own: bytes, masks: ConfigMasks) -> tuple[int, ByteMask] | None:
    """The first byte (and its masks) where ``incoming`` changes a bit the load compares, as QEMU finds it."""
    for at in sorted(masks.masks):
        mask = masks.masks[at]
        if at < len(incoming) and at < len(own) and (incoming[at] ^ own[at]) & mask.compared:
            return at, mask
    return None
