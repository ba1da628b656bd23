"""QEMU's load rules applied to a stream and a destination profile, without QEMU.

The rules are those of migration/savevm.c (``qemu_loadvm_state``: the
configuration section, ``find_se``, the section version), migration/ram.c
(the RAM block list: names and lengths, ``qemu_ram_resize`` in
system/physmem.c) and migration/vmstate.c (``vmstate_load_state``: the
minimum version, subsections known to the destination).  Each refusal
carries the lines QEMU prints for it, the byte offset of the record it is
about, the section and field path, and what would fix it.  The lines that
the pre-flight corpus and the cross-version matrix exercise were seen from
real QEMU 7.2 and 10.0; "Configuration section missing", "Unknown savevm
section type" and "Size too large" are read from QEMU's sources, not yet
seen.  QEMU stops at its first refusal; the later ones are what it would
say next, once the first is fixed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, BinaryIO

import attrs

from streams import records
from streams.qemu import StreamReader

from ..description import Record
from .pci_config import config_masks, first_refused_byte
from .profile import Profile, VirtioSlot, VmsdShape

__all__ = ["Refusal", "Verdict", "device_load_failure", "listed_subsections", "pci_config_unchecked", "predict",
           "section_refusals"]

_EINVAL = "Invalid argument"
_EPERM = "Operation not permitted"  # virtio_load's -1
_NO_VECTOR = 0xFFFF
_ENOENT = "No such file or directory"


@attrs.frozen
class Refusal:
    """One reason the destination would refuse the stream."""

    #: a short name of the rule: ``machine-type``, ``unknown-section``, ``version-too-new``, ...
    rule: str
    #: the lines QEMU prints (without its ``qemu-system-...: `` prefix), in order
    qemu_lines: tuple[str, ...]
    #: where in the stream: the offset of the record the rule is about
    offset: int
    section: str
    path: str
    #: what would make the destination accept it
    fix: str

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self, value_serializer=lambda _i, _a, v: list(v) if isinstance(v, tuple) else v)


@attrs.frozen
class Verdict:
    """The prediction for one stream and one destination."""

    refusals: tuple[Refusal, ...]
    #: what could not be checked, and why (never silently skipped)
    unchecked: tuple[str, ...]
    sections_checked: int
    ram_blocks_checked: int

    @property
    def loads(self) -> bool:
        return not self.refusals


def _failed(error: str) -> str:
    return f"load of migration failed: {error}"


def _device_error(instance_id: int, idstr: str) -> str:
    return f"error while loading state for instance {instance_id:#x} of device '{idstr}'"


def predict(source: BinaryIO, profile: Profile, *, descriptions: Any = None) -> Verdict:
    """Walk the stream in ``source`` and apply the destination's load rules."""
    reader = StreamReader(source, descriptions=descriptions, batch_pages=True)
    vmdesc = _vmdesc_index(reader.vmdesc)
    refusals: list[Refusal] = []
    unchecked: list[str] = []
    if reader.vmdesc is None:
        unchecked.append("subsections: the stream has no vmdesc trailer naming them")
    sections = ram_blocks = 0
    undescribed: set[str] = set()  # sections whose vmsd the destination's -dump-vmstate does not list
    configuration_seen = False
    offset = header_offset = 0
    for record in reader:
        if isinstance(record, records.DeviceState) and profile.section(record.idstr, record.instance_id) is not None:
            refusals.extend(_checked_fields(record, profile, header_offset))
        match record:
            case records.Configuration():
                configuration_seen = True
                refusals.extend(_configuration(record, offset, profile))
            case records.SectionHeader(idstr=str() as idstr, instance_id=int() as instance, version=int() as version):
                if profile.machine is not None and not configuration_seen:
                    refusals.append(Refusal("configuration-missing", ("Configuration section missing", _failed(_EINVAL)),
                                            offset, "configuration", "",
                                            "a machine type that writes a configuration section (2.3 or later) "
                                            "on the source, or a destination machine type of the source's era"))
                    configuration_seen = True
                sections += 1
                slot = profile.section(idstr, instance)
                if slot is not None and slot.vmsd_name is not None and slot.vmsd_name not in profile.vmsds:
                    undescribed.add(slot.vmsd_name)
                refusals.extend(_section(idstr, instance, version, offset, profile, vmdesc))
                header_offset = offset
            case records.DeviceState(record=Record(fields={"virtio": Record() as state})):
                slot = profile.section(record.idstr, record.instance_id)
                if slot is not None and record.idstr in profile.virtio:
                    refusals.extend(_virtio(state, record.idstr, record.instance_id, slot.vmsd_name or "?",
                                            profile.virtio[record.idstr], header_offset))
                elif slot is not None:
                    unchecked.append(f"{record.idstr}: the destination told nothing of this virtio device")
            case records.RamBlockList():
                ram_blocks += len(record.blocks)
                refusals.extend(_ram_blocks(record, offset, profile))
        if isinstance(record, records.DeviceState) and profile.section(record.idstr, record.instance_id) is not None:
            refusals.extend(_subsection_versions(record, profile, vmdesc, header_offset))
        offset = reader.offset
    for idstr, virtio_slot in sorted(profile.virtio.items()):
        unchecked.extend(pci_config_unchecked(idstr, virtio_slot))
    if any(slot.pci_config for slot in profile.virtio.values()):
        unchecked.append("PCI BARs' read-only bits (their masks follow BAR sizes, which no stream carries)")
    if undescribed:
        unchecked.append(f"minimum version and subsections of {len(undescribed)} vmsd(s) the destination's "
                         f"-dump-vmstate does not list: {', '.join(sorted(undescribed))}")
    return Verdict(tuple(refusals), tuple(unchecked), sections, ram_blocks)


def _configuration(record: records.Configuration, offset: int, profile: Profile) -> Iterator[Refusal]:
    if profile.machine is None:
        yield Refusal("configuration-unexpected", (f"Unknown savevm section type {records.SectionType.CONFIGURATION.value}",
                                                   _failed(_EINVAL)), offset, "configuration", "",
                      "a destination machine type that reads a configuration section (2.3 or later)")
    elif record.machine != profile.machine:
        yield Refusal("machine-type", (f"Machine type received is '{record.machine}' and local is '{profile.machine}'",
                                       _failed(_EINVAL)), offset, "configuration", "name",
                      f"start the destination with -M {record.machine}")


def _section(idstr: str, instance: int, version: int, offset: int, profile: Profile,
             vmdesc: dict[tuple[str, int], dict[str, Any]]) -> Iterator[Refusal]:
    slot = profile.section(idstr, instance)
    if slot is None:
        yield Refusal("unknown-section", (
            f"Unknown savevm section or instance '{idstr}' {instance}. Make sure that your current VM setup matches "
            "your saved VM setup, including any hotplugged devices", _failed(_EINVAL)), offset, idstr, "",
            "give the destination the device the source had (same -device options and bus address), "
            "or remove it from the stream")
        return
    if version > slot.version_id:
        yield Refusal("version-too-new", (f"savevm: unsupported version {version} for '{idstr}' v{slot.version_id}",
                                          _failed(_EINVAL)), offset, idstr, "",
                      f"a destination whose '{idstr}' loads version {version} (a newer QEMU), or a source machine type "
                      f"that writes version {slot.version_id}")
        return
    shape = profile.vmsds.get(slot.vmsd_name) if slot.vmsd_name else None
    if shape is None:
        return
    if version < shape.minimum_version:
        yield Refusal("version-too-old", (
            f"{shape.name}: incoming version_id {version} is too old for local minimum version_id  {shape.minimum_version}",
            _device_error(instance, idstr), _failed(_EINVAL)), offset, idstr, "",
            f"a destination QEMU old enough to load '{shape.name}' version {version}")
        return
    entry = vmdesc.get((idstr, instance))
    if entry is not None:
        for path in _unknown_subsections(entry, shape, ""):
            yield Refusal("unknown-subsection", (_device_error(instance, idstr), _failed(_ENOENT)), offset, idstr, path,
                          f"a destination that knows subsection '{path}' "
                          "(a newer QEMU), or a source machine type that does not send it")
            return


def _unknown_subsections(entry: dict[str, Any], shape: VmsdShape, path: str) -> Iterator[str]:
    """Paths of the subsections the stream carries (its vmdesc says) that the destination's vmsd lacks."""
    for sub in entry.get("subsections", []) if isinstance(entry.get("subsections"), list) else []:
        name = sub.get("vmsd_name") if isinstance(sub, dict) else None
        if not isinstance(name, str):
            continue
        known = shape.subsections.get(name)
        if known is None:
            yield f"{path}{name}"
        else:
            yield from _unknown_subsections(sub, known, f"{path}{name}.")
    for field in entry.get("fields", []) if isinstance(entry.get("fields"), list) else []:
        if not isinstance(field, dict) or field.get("type") != "struct" or not isinstance(field.get("struct"), dict):
            continue
        nested = shape.structs.get(str(field.get("name")))
        if nested is not None:
            yield from _unknown_subsections(field["struct"], nested, f"{path}{field.get('name')}.")


def _virtio(state: Record, idstr: str, instance: int, vmsd: str, slot: VirtioSlot, offset: int) -> Iterator[Refusal]:
    """hw/virtio/virtio.c ``virtio_load`` and the transport's vector loads, in QEMU's order."""
    tail = (f"Failed to load {vmsd}:virtio", _device_error(instance, idstr))

    def refusal(rule: str, first: tuple[str, ...], error: str, path: str, fix: str) -> Refusal:
        return Refusal(rule, (*first, *tail, _failed(error)), offset, idstr, path, fix)

    transport = state.fields.get("transport")
    pci = transport.fields.get("pci") if isinstance(transport, Record) else None
    config = pci.fields.get("config") if isinstance(pci, Record) else None
    if slot.pci_config is not None and isinstance(config, (bytes, bytearray)):
        own = bytes.fromhex(slot.pci_config)
        refused = first_refused_byte(bytes(config), own, config_masks(own))
        if refused is not None:
            at, mask = refused
            yield refusal("pci-config", (
                f"get_pci_config_device: Bad config data: i={at:#x} read: {config[at]:x} device: {own[at]:x} "
                f"cmask: {mask.cmask:x} wmask: {mask.wmask:x} w1cmask:{mask.w1cmask:x}",
                "Failed to load PCIDevice:config"), _EINVAL, f"virtio.transport.pci.config[{at:#x}]",
                "the same kind of device as the source's (e.g. the same disable-legacy/disable-modern setting)"
                if at < 0x40 else "the config bytes the destination's device has there (a read-only capability "
                "register: the same device options and QEMU as the source's)")
            return
    config_vector = transport.fields.get("config_vector") if isinstance(transport, Record) else None
    if _vector_refused(config_vector, slot):
        yield refusal("msix-vector", (), _EINVAL, "virtio.transport.config_vector",
                      f"a destination device with more than {config_vector} MSI-X vectors (-device ...,vectors=N)")
        return
    for index, queue in enumerate(state.fields.get("vq", [])):
        fields = queue.fields if isinstance(queue, Record) else {}
        desc, last = fields.get("desc"), fields.get("last_avail_idx")
        if desc == 0 and last:
            yield refusal("virtqueue-index", (f"VQ {index} address 0x0 inconsistent with Host index {last:#x}",), _EPERM,
                          f"virtio.vq[{index}].last_avail_idx", "a last_avail_idx of 0 for a queue the guest never set up")
            return
        if _vector_refused(fields.get("vector"), slot):
            yield refusal("msix-vector", (), _EINVAL, f"virtio.vq[{index}].vector",
                          f"a destination device with more than {fields.get('vector')} MSI-X vectors "
                          "(-device ...,vectors=N)")
            return
    device = state.fields.get("device")
    if isinstance(device, Record) and device.fields.get("has_vnet_hdr") and slot.has_vnet_hdr is False:
        yield refusal("vnet-hdr", ("virtio-net: saved image requires vnet_hdr=on", "Failed to load virtio-net-device:tmp"),
                      _EINVAL, "virtio.device.has_vnet_hdr",
                      "a destination netdev with a vnet header (tap,vnet_hdr=on), as the source had")
        return
    sub = state.subsections.get("virtio/64bit_features")
    guest = sub.fields.get("guest_features") if sub is not None else state.fields.get("guest_features_lo")
    if isinstance(guest, int) and slot.host_features is not None and guest & ~slot.host_features:
        extra = guest & ~slot.host_features
        yield refusal("features", (f"Features {guest:#x} unsupported. Allowed features: {slot.host_features:#x}",),
                      _EPERM, "virtio.guest_features",
                      f"a destination device that offers features {extra:#x} (its properties, or a newer machine type)")


def section_refusals(record: records.DeviceState, profile: Profile, *, offset: int = 0) -> list[Refusal]:
    """The device checks pre-flight applies to one decoded section (``vmstate edit`` runs them after an edit).

    Its virtio load checks when the profile has the section's virtio slot,
    and the destination's ``* equal`` / ``int32 le`` field checks.
    """
    found: list[Refusal] = list(_checked_fields(record, profile, offset))
    state = record.record.fields.get("virtio") if isinstance(record.record, Record) else None
    slot = profile.virtio.get(record.idstr)
    if isinstance(state, Record) and slot is not None:
        section = profile.section(record.idstr, record.instance_id)
        vmsd = section.vmsd_name if section is not None and section.vmsd_name else record.description.name
        found.extend(_virtio(state, record.idstr, record.instance_id, vmsd, slot, offset))
    return found


def pci_config_unchecked(idstr: str, slot: VirtioSlot) -> list[str]:
    """What of a destination device's PCI config bytes the rules cannot check (a 64-byte profile, unknown capabilities)."""
    if slot.pci_config is None:
        return []
    if len(slot.pci_config) == 128:
        return [f"{idstr}: PCI config bytes past the header (the profile keeps only the first 64; "
                "learn it again to check the capabilities)"]
    return [f"{idstr}: {what}" for what in config_masks(bytes.fromhex(slot.pci_config)).unknown]


def device_load_failure(vmsd_field: str, instance_id: int, idstr: str, error: str = _EINVAL) -> tuple[str, ...]:
    """The lines QEMU prints when a device's field fails to load (``Failed to load virtio-console:virtio``, ...)."""
    return (f"Failed to load {vmsd_field}", _device_error(instance_id, idstr), _failed(error))


def _checked_fields(record: records.DeviceState, profile: Profile, offset: int) -> Iterator[Refusal]:
    """migration/vmstate-types.c: ``int32 le`` takes 0..its own value, ``* equal`` only its own value."""
    for check in profile.field_checks:
        if (check.idstr, check.instance_id) != (record.idstr, record.instance_id):
            continue
        value = record.record.fields.get(check.field)
        if not isinstance(value, int) or isinstance(value, bool):
            continue
        if check.rule == "le" and not 0 <= value <= check.value:
            first = f"Invalid value {value} expecting positive value <= {check.value}"
            fix = f"a destination whose {check.field} is at least {value} (a newer QEMU or the source's CPU model)"
        elif check.rule == "equal" and value != check.value:
            first = f"{check.value:x} != {value:x}"
            fix = f"a destination device whose {check.field} is {value}, as the source's"
        else:
            continue
        yield Refusal(f"field-{check.rule}", (first, f"Failed to load {check.vmsd}:{check.field}",
                                              _device_error(record.instance_id, record.idstr), _failed(_EINVAL)),
                      offset, record.idstr, check.field, fix)
        return


def _subsection_versions(record: records.DeviceState, profile: Profile, vmdesc: dict[tuple[str, int], dict[str, Any]],
                         offset: int) -> Iterator[Refusal]:
    """vmstate_subsection_load: a subsection newer than the destination's (its own stream sent that one)."""
    entry = vmdesc.get((record.idstr, record.instance_id))
    local = profile.subsection_versions.get(record.idstr, {})
    if entry is None or not local:
        return
    for name, version in listed_subsections(entry):
        mine = local.get(name)
        if mine is not None and version > mine:
            yield Refusal("subsection-version-too-new", (
                f"{name}: incoming version_id {version} is too new for local version_id {mine}",
                _device_error(record.instance_id, record.idstr), _failed(_EINVAL)), offset, record.idstr, name,
                f"a destination whose '{name}' loads version {version} (a newer QEMU)")
            return


def listed_subsections(entry: dict[str, Any]) -> Iterator[tuple[str, int]]:
    """(vmsd name, version) of every subsection a vmdesc entry lists, those of nested structs too."""
    for sub in entry.get("subsections", []) if isinstance(entry.get("subsections"), list) else []:
        if isinstance(sub, dict) and isinstance(sub.get("vmsd_name"), str) and isinstance(sub.get("version"), int):
            yield sub["vmsd_name"], sub["version"]
            yield from listed_subsections(sub)
    for field in entry.get("fields", []) if isinstance(entry.get("fields"), list) else []:
        if isinstance(field, dict) and isinstance(field.get("struct"), dict):
            yield from listed_subsections(field["struct"])


def _vector_refused(vector: Any, slot: VirtioSlot) -> bool:
    """msix_vector_use: a vector at or past the device's MSI-X table is refused."""
    return isinstance(vector, int) and vector != _NO_VECTOR and slot.vectors is not None and vector >= slot.vectors


def _ram_blocks(record: records.RamBlockList, offset: int, profile: Profile) -> Iterator[Refusal]:
    for block in record.blocks:
        slot = profile.ram_block(block.name)
        lines: tuple[str, ...]
        if slot is None:
            lines = (f'Unknown ramblock "{block.name}", cannot accept migration',)
            fix = "give the destination the device (or memory backend) that owns this RAM block"
        elif block.length == slot.used_length:
            continue
        elif not slot.resizeable:
            lines = (f"Size mismatch: {block.name}: {block.length:#x} != {slot.used_length:#x}: {_EINVAL}",)
            fix = (f"start the destination with -m {block.length >> 20}M" if block.name.endswith(".ram")
                   else f"give the destination a '{block.name}' of {block.length:#x} bytes (e.g. the source's romfile)")
        elif block.length > slot.max_length:
            lines = (f"Size too large: {block.name}: {block.length:#x} > {slot.max_length:#x}: {_EINVAL}",)
            fix = f"a destination whose '{block.name}' may grow to {block.length:#x} bytes"
        else:
            continue  # QEMU resizes it
        yield Refusal("ram-block", (*lines, _device_error(0, "ram"), _failed(_EINVAL)), offset, "ram",
                      f"blocks/{block.name}", fix)


def _vmdesc_index(vmdesc: dict[str, Any] | None) -> dict[tuple[str, int], dict[str, Any]]:
    devices = (vmdesc or {}).get("devices", [])
    return {(d["name"], d["instance_id"]): d for d in devices if isinstance(d, dict)
            and isinstance(d.get("name"), str) and isinstance(d.get("instance_id"), int)}
