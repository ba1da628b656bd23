"""The index item that ends a snapshot's items: what the file holds, per device.

It is written last (so a snapshot is written in one pass) and its offset is
in the fixed tail, so ``read_index`` finds it without decoding the rest.
Each device section is listed with the description name and version that
decoded it, which is how a reader knows what an old snapshot holds before
loading it.
"""

from __future__ import annotations

from typing import Any

import attrs

from streams.records import (
    Configuration,
    DeviceState,
    RamPage,
    RamPageRun,
    RamZero,
    StreamRecord,
)

from ._fields import ItemFields

__all__ = ["IndexBuilder", "IndexEntry", "SnapshotIndex", "index_from_item"]


@attrs.frozen
class IndexEntry:
    """One device section: where it sits and which description (name, version) decoded it."""

    idstr: str
    instance_id: int
    version: int
    description: str
    description_version: int
    source: str


@attrs.frozen
class SnapshotIndex:
    """What one snapshot file holds."""

    #: ``stream`` (a whole QEMU stream) or ``devices`` (a set of device states)
    content: str
    #: items before the index, the opening ``snapshot`` item included
    items: int
    devices: tuple[IndexEntry, ...]
    ram_pages: int
    ram_zero_pages: int
    machine: str | None = None


class IndexBuilder:
    """Count what goes by, item by item and record by record."""

    def __init__(self, content: str) -> None:
        self.content = content
        self.items = 0
        self.devices: list[IndexEntry] = []
        self.ram_pages = 0
        self.ram_zero_pages = 0
        self.machine: str | None = None

    def add(self, record: StreamRecord, *, description_version: int | None = None) -> None:
        """Note one record; ``description_version`` is the one the item names, if not the record's own."""
        match record:
            case RamPage():
                self.ram_pages += 1
            case RamPageRun():
                self.ram_pages += record.count
            case RamZero():
                self.ram_zero_pages += 1
            case DeviceState():
                version = record.description.version if description_version is None else description_version
                self.devices.append(
                    IndexEntry(record.idstr, record.instance_id, record.version, record.description.name, version, record.source)
                )
            case Configuration():
                self.machine = record.machine

    def build(self) -> SnapshotIndex:
        return SnapshotIndex(self.content, self.items, tuple(self.devices), self.ram_pages, self.ram_zero_pages, self.machine)


def index_to_item(index: SnapshotIndex) -> dict[str, Any]:
    """The index as an item."""
    item: dict[str, Any] = {
        "t": "index",
        "content": index.content,
        "items": index.items,
        "ram_pages": index.ram_pages,
        "ram_zero_pages": index.ram_zero_pages,
        "devices": [
            {
                "idstr": e.idstr,
                "instance": e.instance_id,
                "version": e.version,
                "description": e.description,
                "description_version": e.description_version,
                "source": e.source,
            }
            for e in index.devices
        ],
    }
    if index.machine is not None:
        item["machine"] = index.machine
    return item


def index_from_item(item: ItemFields, max_devices: int) -> SnapshotIndex:
    """Read an index item (untrusted)."""
    devices = []
    for raw in item.list("devices", max_devices):
        if not isinstance(raw, dict):
            raise item.bad("devices", "holds an entry that is not a map")
        entry = ItemFields(raw, "index device")
        devices.append(
            IndexEntry(
                entry.wire_name("idstr"),
                entry.uint("instance", 32),
                entry.uint("version", 32),
                entry.text("description", 255),
                entry.uint("description_version", 32),
                entry.text("source", 16),
            )
        )
    return SnapshotIndex(
        item.text("content", 16),
        item.uint("items"),
        tuple(devices),
        item.uint("ram_pages"),
        item.uint("ram_zero_pages"),
        item.optional_text("machine"),
    )
