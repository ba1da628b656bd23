"""QEMU's load rules applied to a stream and a destination profile, without QEMU.

The rules are those of migration/savevm.c (``qemu_loadvm_state``: the
configuration section, ``find_se``, the section version), migration/ram.c
(the RAM block list: names and lengths, ``qemu_ram_resize`` in
system/physmem.c) and migration/vmstate.c (``vmstate_load_state``: the
minimum version, subsections known to the destination).  Each refusal
carries the lines QEMU prints for it (checked against QEMU 7.2 and 10.0),
the byte offset of the record it is about, the section and field path, and
what would fix it.  QEMU stops at its first refusal; the later ones are what
it would say next, once the first is fixed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, BinaryIO

import attrs

from streams import records
from streams.qemu import StreamReader

from .profile import Profile, VmsdShape

__all__ = ["Refusal", "Verdict", "predict"]

_EINVAL = "Invalid argument"
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
    offset = 0
    for record in reader:
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
            case records.RamBlockList():
                ram_blocks += len(record.blocks)
                refusals.extend(_ram_blocks(record, offset, profile))
        offset = reader.offset
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
