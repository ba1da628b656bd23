"""After an edit: what QEMU's load would refuse in the sections that changed (pre-flight's device checks).

Against a destination profile (``vmstate preflight --save-profile``) the
checks are pre-flight's, for the edited sections: the virtio load rules
(ring indices without a ring, MSI-X vectors past the table, features the
device does not offer, ``has_vnet_hdr`` without a vnet header backend,
read-only PCI config bytes: the header and the capabilities) and the ``* equal`` field checks; and
virtio-serial's ports map, which must name the destination's own ports.

Without a profile the destination is taken to be the device the stream
came from: its MSI-X table size, its PCI config bytes, its vnet header (a source
that had none; one that had it is assumed to keep it). The features it
offers are not in the stream, so they stay unchecked; ``unchecked`` says so.
"""

from __future__ import annotations

import attrs

from devices.virtio.device import virtio_section_of
from streams.records import DeviceState
from vmstate.description import Record
from vmstate.preflight.profile import Profile, SectionSlot, VirtioSlot
from vmstate.preflight.rules import Refusal, device_load_failure, pci_config_unchecked, section_refusals

__all__ = ["EditChecks", "source_slot"]

_MSIX_ENTRY = 16


def source_slot(state: DeviceState) -> VirtioSlot | None:
    """What the device the section came from accepts, as far as its own state tells."""
    section = virtio_section_of(state)
    if section is None:
        return None
    transport = section.value.fields.get("transport")
    table = transport.fields.get("msix_table") if isinstance(transport, Record) else None
    pci = transport.fields.get("pci") if isinstance(transport, Record) else None
    config = pci.fields.get("config") if isinstance(pci, Record) else None
    device = section.value.fields.get("device")
    vnet = device.fields.get("has_vnet_hdr") if isinstance(device, Record) else None
    return VirtioSlot(
        host_features=None,
        vectors=len(table) // _MSIX_ENTRY if isinstance(table, (bytes, bytearray)) and table else None,
        has_vnet_hdr=False if vnet == 0 else None,
        pci_config=bytes(config).hex() if isinstance(config, (bytes, bytearray)) and len(config) in (256, 4096)
        else None,
    )


@attrs.define
class EditChecks:
    """Collects the refusals of the edited sections, against ``profile`` or each section's source."""

    profile: Profile | None = None
    refusals: list[Refusal] = attrs.Factory(list)
    unchecked: list[str] = attrs.Factory(list)

    def check(self, before: DeviceState, after: DeviceState) -> None:
        """Check ``after`` (``before`` edited) as the destination would load it."""
        profile = self.profile
        if profile is None:
            slot = source_slot(before)
            if slot is None:
                return
            self.unchecked.append(f"{after.idstr}: the features the device offers (give --profile to check them)")
            profile = Profile(qemu="the source", argv=(), machine=None,
                              sections=(SectionSlot(after.idstr, after.instance_id, after.version,
                                                    before.description.name),),
                              ram=(), vmsds={}, virtio={after.idstr: slot})
        slot = profile.virtio.get(after.idstr)
        if slot is not None:
            self.unchecked.extend(pci_config_unchecked(after.idstr, slot))
        self.refusals.extend(section_refusals(after, profile))
        self.refusals.extend(_ports_map(before, after))


def _ports_map(before: DeviceState, after: DeviceState) -> list[Refusal]:
    """virtio_serial_load_device: the ports in use must be the destination's own (seen from real QEMU 7.2).

    The destination is taken to have the source's ports (its command line made them).
    """
    def ports(state: DeviceState) -> object:
        section = virtio_section_of(state)
        device = section.value.fields.get("device") if section is not None else None
        return device.fields.get("ports_map") if isinstance(device, Record) else None

    old, new = ports(before), ports(after)
    if old is None or old == new:
        return []
    return [Refusal("ports-map", device_load_failure("virtio-console:virtio", after.instance_id, after.idstr), 0,
                    after.idstr, "virtio.device.ports_map",
                    f"a destination whose virtio-serial ports are those of the map ({new}): one "
                    "virtserialport per bit, with those nr= numbers")]
