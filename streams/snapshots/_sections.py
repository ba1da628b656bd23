"""Device and configuration sections as items, and back through the engine.

A ``device`` item names the section (idstr, instance, section version), the
description that decoded it (name and version) and where that description
comes from::

    {"t": "device", "idstr": "0000:00:03.0/virtio-net", "instance": 0,
     "version": 11, "description": "virtio-net", "description_version": 11,
     "source": "typed", "state": {"version": 11, "fields": {...}}}

* ``typed``: one of our state classes; the reader looks it up again in its
  registry by idstr, instance and section version.  Our current description
  may be newer than the one that wrote the file: it loads the old state as
  it loads an old QEMU stream.  A different name is an error.
* ``vmdesc``: built from the stream's own vmdesc; the item carries that
  vmdesc entry (``"vmdesc": {...}``), so each section is self-contained.

Loading a state goes through the same path as a QEMU stream: the state is
encoded to QEMU's bytes with the description and decoded back by the engine
(version window, field gating, subsections, limits), so a snapshot can only
yield what a QEMU stream could have.
"""

from __future__ import annotations

from typing import Any

from streams.qemu.configuration import CONFIGURATION
from streams.records import Configuration, DeviceState
from vmstate.description import Description, Record
from vmstate.engine import check_version, decode, encode
from vmstate.errors import (
    DecodeError,
    DescriptionError,
    EncodeError,
    LimitExceededError,
    MalformedError,
    VersionError,
)
from vmstate.limits import Limits
from vmstate.lookup import TYPED_SOURCE, VMDESC_SOURCE, DescriptionLookup, LookupFunction, as_lookup
from vmstate.vmdesc import description_from_vmdesc, vmdesc_from_description
from vmstate.wire import ByteReader

from ._codec import nesting_limit
from ._fields import ItemFields
from ._values import record_from_plain, record_to_plain

__all__ = ["configuration_from_item", "configuration_item", "device_from_item", "device_item"]


def _state(record: Record, section: str) -> dict[str, Any]:
    try:
        return record_to_plain(record)
    except EncodeError as error:
        error.section = error.section or section
        raise


def _vmdesc_entry(record: DeviceState) -> dict[str, Any]:
    """The section's entry in QEMU's vmdesc shape (``name`` and ``instance_id`` included)."""
    try:
        entry = {"name": record.idstr, "instance_id": record.instance_id, **vmdesc_from_description(record.description)}
        rebuilt = description_from_vmdesc(entry)
    except DecodeError as error:
        raise EncodeError(f"its vmdesc description cannot be written down: {error.message}",
                          path=error.path or (), section=record.idstr) from error
    if rebuilt != record.description:
        raise EncodeError("its description does not survive as a vmdesc entry", section=record.idstr)
    return entry


def device_item(record: DeviceState) -> dict[str, Any]:
    """A device section as an item."""
    item: dict[str, Any] = {
        "t": "device",
        "idstr": record.idstr,
        "instance": record.instance_id,
        "version": record.version,
        "description": record.description.name,
        "description_version": record.description.version,
        "source": record.source,
        "state": _state(record.record, record.idstr),
    }
    if record.source == VMDESC_SOURCE:
        item["vmdesc"] = _vmdesc_entry(record)
    elif record.source != TYPED_SOURCE:
        raise EncodeError(f"unknown description source {record.source!r}", section=record.idstr)
    if record.fallback is not None:
        item["fallback"] = record.fallback
    return item


def configuration_item(record: Configuration) -> dict[str, Any]:
    """The configuration section as an item."""
    return {
        "t": "configuration",
        "description": record.description.name,
        "description_version": record.description.version,
        "state": _state(record.record, "configuration"),
    }


def _typed_description(
    descriptions: DescriptionLookup | LookupFunction | None, idstr: str, instance: int, version: int, name: str, name_version: int
) -> Description:
    lookup = as_lookup(descriptions)
    offered = [] if lookup is None else lookup.candidates(idstr, instance, version)
    # one of several variants of a vmsd (devices.Registry.candidates): the one the snapshot names
    found = next((d for d in offered if d.name == name), offered[0] if offered else None)
    if found is None:
        raise VersionError(
            f"no description of ours loads section version {version} (the snapshot used {name!r} v{name_version})",
            version=version,
        )
    if found.name != name:
        raise MalformedError(f"the snapshot decoded this section with {name!r}; ours is {found.name!r}")
    return found


def _vmdesc_description(entry: dict[str, Any], limits: Limits) -> Description:
    try:
        return description_from_vmdesc(entry, limits=limits)
    except DescriptionError as error:
        raise MalformedError(f"the vmdesc entry is not a valid description: {error}") from None


def device_from_item(item: ItemFields, descriptions: DescriptionLookup | LookupFunction | None, limits: Limits) -> DeviceState:
    """Rebuild a device section from an (untrusted) item, loading its state through the engine."""
    idstr = item.wire_name("idstr")
    try:
        instance = item.uint("instance", 32)
        version = item.uint("version", 32)
        name = item.text("description", 255)
        name_version = item.uint("description_version", 32)
        source = item.text("source", 16)
        fallback = item.text("fallback") if item.has("fallback") else None
        if source == TYPED_SOURCE:
            description = _typed_description(descriptions, idstr, instance, version, name, name_version)
        elif source == VMDESC_SOURCE:
            description = _vmdesc_description(item.map("vmdesc"), limits)
            if (description.name, description.version) != (name, name_version):
                raise MalformedError(f"the vmdesc entry describes {description.name!r} v{description.version}, not {name!r} v{name_version}")
        else:
            raise MalformedError(f"unknown description source {source!r}")
        description, record, size = _load_with_some_layout(description, item.raw("state"), limits)
    except DecodeError as error:
        error.add_context(section=idstr)
        raise
    return DeviceState(idstr, instance, version, description, record, source, size, fallback)


def _load_with_some_layout(description: Description, plain: Any, limits: Limits) -> tuple[Description, Record, int]:
    """``load_state`` with the first of the description's layouts that fits (see ``Description.alternatives``).

    A layout fits when it loads the state and keeps every field of it: the
    encoder passes over fields a layout does not declare (``piix4_pm``'s slot
    statuses, for the layout of a machine without memory slots).  If no layout
    keeps them all, the first that loads is taken.
    """
    layouts = description.layouts()
    if len(layouts) == 1:
        record, size = load_state(description, plain, limits)
        return description, record, size
    given = _shape(record_from_plain(plain, max_depth=nesting_limit(limits)))
    first: tuple[Description, Record, int] | None = None
    for i, layout in enumerate(layouts):
        try:
            record, size = load_state(layout, plain, limits)
        except DecodeError:
            if i + 1 == len(layouts) and first is None:
                raise
            continue
        if _shape(record) == given:
            return layout, record, size
        first = first or (layout, record, size)
    assert first is not None
    return first


def _shape(value: Any) -> Any:
    """The field and subsection names of a record, all the way down, and the length of every list."""
    if isinstance(value, Record):
        return ({name: _shape(v) for name, v in value.fields.items()},
                {name: _shape(v) for name, v in value.subsections.items()})
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return None


def configuration_from_item(item: ItemFields, limits: Limits) -> Configuration:
    """Rebuild the configuration section from an (untrusted) item."""
    name = item.text("description", 255)
    if name != CONFIGURATION.name:
        raise MalformedError(f"configuration item names description {name!r}")
    try:
        record, _ = load_state(CONFIGURATION, item.raw("state"), limits)
    except DecodeError as error:
        error.add_context(section="configuration")
        raise
    return Configuration(CONFIGURATION, record)


def load_state(description: Description, plain: Any, limits: Limits) -> tuple[Record, int]:
    """Load an untrusted state through QEMU's wire: encode it, decode it with the engine.

    Returns the engine's record and the section's size in QEMU bytes.
    """
    record = record_from_plain(plain, max_depth=nesting_limit(limits))
    check_version(description, record.version)  # the VersionError decoding would give, before encoding
    try:
        data = encode(description, record, limits=limits)
    except EncodeError as error:  # custom codecs included: the engine holds them to EncodeError
        raise MalformedError(f"the state does not fit {description.name!r} v{record.version}: {error.message}", path=error.path) from None
    if len(data) > limits.max_section_body:
        raise LimitExceededError(f"a section of {len(data)} bytes exceeds limits.max_section_body = {limits.max_section_body}")
    reader = ByteReader(data)
    try:
        loaded = decode(description, reader, record.version, limits=limits)
    except DecodeError as error:
        # The offset is inside the re-encoded section, not in the file: the file's comes from the item.
        error.section_offset, error.offset = error.offset, None
        raise
    if reader.offset != len(data):
        raise MalformedError(f"the state leaves {len(data) - reader.offset} bytes its description does not read")
    return loaded, len(data)
