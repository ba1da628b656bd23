"""Open either kind of input as a sequence of stream records.

``migration-diff`` compares QEMU streams (plain, xz or gzip) and our snapshot
files (msgpack, CBOR or JSON, ``streams.selfdesc``) in any mix: both read as
the same ``StreamRecord``s, so the comparison never knows which it got.
"""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator

import attrs

from streams.records import QEMU_MAGIC, StreamRecord
from vmstate.display import DisplayTable, display_table
from vmstate.errors import MalformedError

__all__ = ["Source", "open_source", "display_kinds"]

_QEMU_HEAD = QEMU_MAGIC.to_bytes(4, "big")


@attrs.frozen
class Source:
    """One opened input: what it is and its records."""

    path: str
    #: ``qemu`` or the snapshot codec (``msgpack``, ``cbor``, ``json``)
    format: str
    records: Iterator[StreamRecord]
    #: bytes of input consumed so far, for progress (None if unknown)
    position: Callable[[], int | None]
    size: int | None
    #: the target page size, once the records read so far have told it
    page_size: Callable[[], int] | None = None


def _registry() -> Any:
    from devices import DEFAULT_REGISTRY

    return DEFAULT_REGISTRY


@functools.cache
def display_kinds() -> DisplayTable:
    """How text output shows the fields of every description we have (``vmstate.display``)."""
    from devices.virtio.common import virtio_description
    from streams.qemu.configuration import CONFIGURATION

    descriptions = [*_registry().descriptions(), virtio_description("pci"), virtio_description("mmio"), CONFIGURATION]
    return display_table(descriptions)


def _snapshot_reader(handle: BinaryIO) -> tuple[str, Iterator[StreamRecord]] | None:
    from streams.selfdesc import SnapshotReader, is_snapshot

    head = handle.read(16)
    handle.seek(0)
    if not is_snapshot(head):
        return None
    reader = SnapshotReader(handle, descriptions=_registry())  # verifies magic, version and checksum first
    return reader.container.codec, iter(reader)


@contextlib.contextmanager
def open_source(path: str | Path) -> Iterator[Source]:
    """Open ``path`` as a QEMU stream or a snapshot file, whichever it is."""
    from streams.files import open_stream
    from streams.qemu import StreamReader

    with open_stream(path) as handle:
        head = handle.read(4)
        handle.seek(0)
        size = _size(handle)
        position = _position(handle)
        if head == _QEMU_HEAD:
            reader = StreamReader(handle, descriptions=_registry(), batch_pages=True)
            records = iter(reader)
            yield Source(str(path), "qemu", records, lambda: reader.offset, size, lambda: reader.page_size)
            return
        snapshot = _snapshot_reader(handle)
        if snapshot is None:
            if not head:
                raise MalformedError("empty file: not a QEMU stream or a snapshot", offset=0)
            raise MalformedError(f"not a QEMU stream or a snapshot (starts with {head.hex()})", offset=0)
        yield Source(str(path), snapshot[0], snapshot[1], position, size)


def _size(handle: BinaryIO) -> int | None:
    try:
        end = handle.seek(0, 2)
        handle.seek(0)
        return end
    except (OSError, ValueError):
        return None


def _position(handle: BinaryIO) -> Callable[[], int | None]:
    def position() -> int | None:
        try:
            return handle.tell()
        except (OSError, ValueError):
            return None

    return position
