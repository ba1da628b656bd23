"""What a destination QEMU expects of an incoming stream: its profile, saved and read back as JSON.

A profile is learned from the destination itself (``vmstate.preflight.learn``):
the sections and instances it would load (with each section's version), its
RAM blocks (used and maximum lengths), its machine type and whether it wants
a configuration section, and the version window and subsection names of
every vmsd those sections use (from its ``-dump-vmstate``).  A saved profile
is untrusted input when read back: it is bounded and checked like a schema
file, and a bad one is a ``ProfileError`` naming the JSON path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from ..errors import VMStateError

__all__ = ["PROFILE_FORMAT", "FieldCheck", "Profile", "ProfileError", "RamSlot", "SectionSlot", "VirtioSlot",
           "VmsdShape"]

PROFILE_FORMAT = "vmstate-forge preflight profile"
PROFILE_VERSION = 1
_U32 = 1 << 32
_U64 = 1 << 64


class ProfileError(VMStateError, ValueError):
    """A profile file that is not one, or says something impossible."""


@attrs.frozen
class SectionSlot:
    """One section the destination would load: QEMU's ``SaveStateEntry`` (idstr, instance, version)."""

    idstr: str
    instance_id: int
    version_id: int
    #: the vmsd that loads it (its vmdesc ``vmsd_name``); None for a section without a vmsd (``ram``)
    vmsd_name: str | None = None


@attrs.frozen
class RamSlot:
    """One RAM block of the destination (``info ramblock``): used and maximum length."""

    name: str
    used_length: int
    max_length: int

    @property
    def resizeable(self) -> bool:
        """Whether QEMU may resize it to the incoming length (``RAM_RESIZEABLE``).

        A block with room to grow is resizeable; so are fw_cfg blobs (``/rom@...``),
        which QEMU always makes resizeable (hw/core/loader.c ``rom_set_mr``).
        """
        return self.max_length > self.used_length or self.name.startswith("/rom@")


@attrs.frozen
class FieldCheck:
    """A field QEMU compares with its own value on load (``VMSTATE_*_EQUAL``, ``VMSTATE_INT32_POSITIVE_LE``)."""

    idstr: str
    instance_id: int
    #: the vmsd the field is in (QEMU's "Failed to load VMSD:FIELD")
    vmsd: str
    field: str
    #: ``le`` (incoming 0..value) or ``equal``
    rule: str
    #: the destination's own value (its own stream)
    value: int


@attrs.frozen
class VirtioSlot:
    """What a destination's virtio device accepts; None where the destination did not tell."""

    #: the features it offers (``vdev->host_features``, from ``x-query-virtio-status``)
    host_features: int | None = None
    #: its MSI-X vectors (the MSI-X table of its own stream); None without MSI-X (virtio-mmio)
    vectors: int | None = None
    #: virtio-net: whether its backend has a vnet header (``has_vnet_hdr`` of its own stream)
    has_vnet_hdr: bool | None = None
    #: virtio-pci: its PCI config space (its own stream), hex; a profile of an earlier release kept 64 bytes
    pci_config: str | None = None


@attrs.frozen
class VmsdShape:
    """A vmsd as far as loading cares: its version window, its subsections and its nested structs."""

    name: str
    version: int
    minimum_version: int
    subsections: dict[str, "VmsdShape"] = attrs.field(factory=dict)
    #: nested vmsds of struct fields, by field name
    structs: dict[str, "VmsdShape"] = attrs.field(factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "minimum_version": self.minimum_version,
                "subsections": {k: v.to_json() for k, v in self.subsections.items()},
                "structs": {k: v.to_json() for k, v in self.structs.items()}}


@attrs.frozen
class Profile:
    """Everything the load rules need to know about one destination."""

    #: what the destination printed for ``--version`` (its first line)
    qemu: str
    #: the destination command line the profile was learned from
    argv: tuple[str, ...]
    #: its machine type (the configuration section it writes); None if it writes none
    machine: str | None
    sections: tuple[SectionSlot, ...]
    ram: tuple[RamSlot, ...]
    vmsds: dict[str, VmsdShape]
    #: virtio sections by idstr
    virtio: dict[str, VirtioSlot] = attrs.field(factory=dict)
    #: fields compared with the destination's own values
    field_checks: tuple[FieldCheck, ...] = ()
    #: the subsections the destination's own stream sent, with their versions, by section idstr
    subsection_versions: dict[str, dict[str, int]] = attrs.field(factory=dict)

    #: ``sections`` and ``ram`` by key, built once (the rules look them up per record)
    _sections: dict[tuple[str, int], SectionSlot] = attrs.field(init=False, eq=False, repr=False)
    _ram: dict[str, RamSlot] = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_sections", {(s.idstr, s.instance_id): s for s in self.sections})
        object.__setattr__(self, "_ram", {r.name: r for r in self.ram})

    def section(self, idstr: str, instance_id: int) -> SectionSlot | None:
        """QEMU's ``find_se``: the section loading (idstr, instance), if the destination has it."""
        return self._sections.get((idstr, instance_id))

    def ram_block(self, name: str) -> RamSlot | None:
        return self._ram.get(name)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": PROFILE_FORMAT, "format_version": PROFILE_VERSION, "qemu": self.qemu, "argv": list(self.argv),
            "machine": self.machine,
            "sections": [attrs.asdict(s) for s in self.sections],
            "ram": [attrs.asdict(r) for r in self.ram],
            "vmsds": {k: v.to_json() for k, v in self.vmsds.items()},
            "virtio": {k: attrs.asdict(v) for k, v in self.virtio.items()},
            "field_checks": [attrs.asdict(c) for c in self.field_checks],
            "subsection_versions": self.subsection_versions,
        }

    @classmethod
    def from_json(cls, data: Any, label: str) -> "Profile":
        """Read a profile (already parsed and bounded JSON); ``ProfileError`` naming ``label`` and the path."""
        top = _object(data, label)
        if top.get("format") != PROFILE_FORMAT:
            raise ProfileError(f"{label}: not a preflight profile (format is not {PROFILE_FORMAT!r})")
        if top.get("format_version") != PROFILE_VERSION:
            raise ProfileError(f"{label}: format_version: only version {PROFILE_VERSION} is read")
        machine = top.get("machine")
        if machine is not None:
            machine = _text(machine, f"{label}: machine")
        return cls(
            qemu=_text(top.get("qemu"), f"{label}: qemu"),
            argv=tuple(_text(a, f"{label}: argv[{i}]") for i, a in enumerate(_list(top.get("argv"), f"{label}: argv"))),
            machine=machine,
            sections=tuple(_section(s, f"{label}: sections[{i}]")
                           for i, s in enumerate(_list(top.get("sections"), f"{label}: sections"))),
            ram=tuple(_ram(r, f"{label}: ram[{i}]") for i, r in enumerate(_list(top.get("ram"), f"{label}: ram"))),
            vmsds={_text(k, f"{label}: vmsds key"): _vmsd(v, f"{label}: vmsds.{k}")
                   for k, v in _object(top.get("vmsds"), f"{label}: vmsds").items()},
            virtio={_text(k, f"{label}: virtio key"): _virtio(v, f"{label}: virtio.{k}")
                    for k, v in _object(top.get("virtio"), f"{label}: virtio").items()},
            field_checks=tuple(_check(c, f"{label}: field_checks[{i}]")
                               for i, c in enumerate(_list(top.get("field_checks"), f"{label}: field_checks"))),
            subsection_versions={
                _text(k, f"{label}: subsection_versions key"): {
                    _text(name, f"{label}: subsection_versions.{k} key"):
                        _int(version, f"{label}: subsection_versions.{k}.{name}", _U32)
                    for name, version in _object(v, f"{label}: subsection_versions.{k}").items()}
                for k, v in _object(top.get("subsection_versions"), f"{label}: subsection_versions").items()},
        )

    @classmethod
    def load(cls, path: str | Path) -> "Profile":
        """Read a saved profile file (bounded as schema files are)."""
        from ..compat._json_input import load_json
        from ..compat.errors import SchemaFormatError

        try:
            return cls.from_json(load_json(path), str(path))
        except SchemaFormatError as error:
            raise ProfileError(str(error)) from None


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ProfileError(f"{where}: is not an object")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise ProfileError(f"{where}: is not a list")
    return value


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ProfileError(f"{where}: is not text")
    return value


def _int(value: Any, where: str, limit: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < limit:
        raise ProfileError(f"{where}: is not an integer in [0, {limit:#x})")
    return value


def _section(value: Any, where: str) -> SectionSlot:
    entry = _object(value, where)
    vmsd = entry.get("vmsd_name")
    return SectionSlot(_text(entry.get("idstr"), f"{where}.idstr"),
                       _int(entry.get("instance_id"), f"{where}.instance_id", _U32),
                       _int(entry.get("version_id"), f"{where}.version_id", _U32),
                       None if vmsd is None else _text(vmsd, f"{where}.vmsd_name"))


def _ram(value: Any, where: str) -> RamSlot:
    entry = _object(value, where)
    return RamSlot(_text(entry.get("name"), f"{where}.name"),
                   _int(entry.get("used_length"), f"{where}.used_length", _U64),
                   _int(entry.get("max_length"), f"{where}.max_length", _U64))


def _check(value: Any, where: str) -> FieldCheck:
    entry = _object(value, where)
    rule = _text(entry.get("rule"), f"{where}.rule")
    if rule not in ("le", "equal"):
        raise ProfileError(f"{where}.rule: is neither 'le' nor 'equal'")
    return FieldCheck(_text(entry.get("idstr"), f"{where}.idstr"),
                      _int(entry.get("instance_id"), f"{where}.instance_id", _U32), _text(entry.get("vmsd"), f"{where}.vmsd"),
                      _text(entry.get("field"), f"{where}.field"), rule, _int(entry.get("value"), f"{where}.value", _U64))


#: a PCI header, a PCI config space, a PCI Express config space
_CONFIG_HEX_LENGTHS = (128, 512, 8192)


def _optional(value: Any, where: str, limit: int) -> int | None:
    return None if value is None else _int(value, where, limit)


def _virtio(value: Any, where: str) -> VirtioSlot:
    entry = _object(value, where)
    vnet = entry.get("has_vnet_hdr")
    if vnet is not None and not isinstance(vnet, bool):
        raise ProfileError(f"{where}.has_vnet_hdr: is not true, false or null")
    key = "pci_config" if "pci_config" in entry else "pci_header"  # the name of an earlier release
    config = entry.get(key)
    if config is not None and (not isinstance(config, str) or len(config) not in _CONFIG_HEX_LENGTHS
                               or any(c not in "0123456789abcdef" for c in config)):
        raise ProfileError(f"{where}.{key}: is not 64, 256 or 4096 bytes of lower-case hex")
    return VirtioSlot(_optional(entry.get("host_features"), f"{where}.host_features", _U64),
                      _optional(entry.get("vectors"), f"{where}.vectors", 1 << 16), vnet, config)


def _vmsd(value: Any, where: str) -> VmsdShape:
    entry = _object(value, where)
    return VmsdShape(
        _text(entry.get("name"), f"{where}.name"),
        _int(entry.get("version"), f"{where}.version", _U32),
        _int(entry.get("minimum_version"), f"{where}.minimum_version", _U32),
        {_text(k, f"{where}.subsections key"): _vmsd(v, f"{where}.subsections.{k}")
         for k, v in _object(entry.get("subsections", {}), f"{where}.subsections").items()},
        {_text(k, f"{where}.structs key"): _vmsd(v, f"{where}.structs.{k}")
         for k, v in _object(entry.get("structs", {}), f"{where}.structs").items()},
    )
