"""Snapshot files on disk: save atomically, load verified, to and from QEMU stream files.

Each function here knows which reader its input needs; ``streams.convert``
sits above ``streams.formats`` and takes whatever file it recognises.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import attrs

from streams.files import open_stream
from streams.qemu.reader import StreamReader
from streams.qemu.writer import StreamWriter
from streams.records import Configuration, DeviceState, StreamRecord
from vmstate.engine import encode
from vmstate.errors import EncodeError, UnsupportedError
from vmstate.limits import DEFAULT_LIMITS, Limits
from vmstate.lookup import TYPED_SOURCE, DescriptionLookup, LookupFunction
from vmstate.typed import description_of, to_record

from ._atomic import atomic_write
from ._index import SnapshotIndex
from ._io import (
    CODECS,
    SnapshotReader,
    codec_named,
    is_snapshot,
    write_records,
)

__all__ = [
    "OUTPUT_FORMATS",
    "DeviceKey",
    "Snapshot",
    "is_snapshot_file",
    "load_snapshot",
    "save_snapshot",
    "save_stream",
    "snapshot_to_stream",
    "stream_to_snapshot",
]

PathLike = str | os.PathLike[str]
#: a device's section name, or its name and instance id
DeviceKey = str | tuple[str, int]
#: what ``streams.convert.convert`` writes: a QEMU stream or a snapshot in one of the codecs
OUTPUT_FORMATS = ("qemu", *CODECS)


@attrs.frozen
class Snapshot:
    """A loaded snapshot: what its file says, and its device sections loaded through the engine."""

    codec: str
    format_version: int
    content: str
    producer: str
    index: SnapshotIndex
    configuration: Configuration | None
    devices: tuple[DeviceState, ...]

    def device(self, idstr: str, instance_id: int = 0) -> DeviceState:
        """The device section ``idstr`` (``KeyError`` if absent)."""
        for device in self.devices:
            if device.idstr == idstr and device.instance_id == instance_id:
                return device
        raise KeyError((idstr, instance_id))

    def states(self) -> dict[tuple[str, int], Any]:
        """Each device as its typed state object (its Record if no state class describes it).

        The objects are built as for a QEMU stream: defaults, ``pre_load``,
        the loaded values, ``post_load``.
        """
        return {(d.idstr, d.instance_id): d.state for d in self.devices}


def _device_records(devices: Mapping[Any, Any]) -> Iterator[DeviceState]:
    for key, value in devices.items():
        idstr, instance_id = (key, 0) if isinstance(key, str) else key
        if isinstance(value, DeviceState):
            if (value.idstr, value.instance_id) != (idstr, instance_id):
                raise EncodeError(f"device {key!r} holds the section {value.idstr!r} instance {value.instance_id}")
            yield value
            continue
        description = description_of(value)
        record = to_record(value)
        size = len(encode(description, record))
        yield DeviceState(idstr, instance_id, record.version, description, record, TYPED_SOURCE, size)


def save_snapshot(
    path: PathLike,
    source: Iterable[StreamRecord] | Mapping[str, Any] | Mapping[tuple[str, int], Any] | Mapping[DeviceKey, Any],
    *,
    codec: str = "msgpack",
    content: str | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> SnapshotIndex:
    """Write a snapshot file atomically; return its index.

    ``source`` is either stream records (a whole QEMU stream, RAM included,
    streamed through) or a mapping of devices: ``idstr`` or ``(idstr,
    instance_id)`` to a typed state object or a ``DeviceState``.  If
    anything fails, or the process dies, ``path`` keeps its old content.
    """
    codec_named(codec)  # before the file is created
    if isinstance(source, Mapping):
        records: Iterable[StreamRecord] = _device_records(source)
        content = content or "devices"
    else:
        records = source
        content = content or "stream"
    with atomic_write(path) as sink:
        return write_records(records, sink, codec=codec, content=content, limits=limits)


def load_snapshot(
    path: PathLike, *, descriptions: DescriptionLookup | LookupFunction | None = None, limits: Limits = DEFAULT_LIMITS
) -> Snapshot:
    """Verify a snapshot file and load its device sections (RAM is streamed past, not kept).

    Magic, format version and checksum are checked before anything is
    decoded; each device state is loaded with our description of it today,
    which also loads states saved with older description versions.
    """
    with open_stream(os.fspath(path)) as handle:
        reader = SnapshotReader(handle, descriptions=descriptions, limits=limits)
        devices: list[DeviceState] = []
        configuration: Configuration | None = None
        for record in reader:
            match record:
                case DeviceState():
                    devices.append(record)
                case Configuration():
                    configuration = record
        assert reader.index is not None
        return Snapshot(
            reader.container.codec,
            reader.container.format_version,
            reader.content,
            reader.producer,
            reader.index,
            configuration,
            tuple(devices),
        )


def stream_to_snapshot(
    src_path: PathLike,
    dst_path: PathLike,
    codec: str = "msgpack",
    *,
    descriptions: DescriptionLookup | LookupFunction | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> SnapshotIndex:
    """Convert a QEMU stream file (plain, xz or gzip) into a snapshot file, atomically."""
    with open_stream(os.fspath(src_path)) as handle:
        return save_snapshot(dst_path, StreamReader(handle, descriptions=descriptions, limits=limits), codec=codec, limits=limits)


def snapshot_to_stream(
    src_path: PathLike,
    dst_path: PathLike,
    *,
    descriptions: DescriptionLookup | LookupFunction | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> int:
    """Write the QEMU stream a snapshot holds, atomically; return its size in bytes.

    QEMU loads the result with ``-incoming``.  A snapshot of a set of
    devices is not a stream (no machine, no RAM): ``UnsupportedError``.
    """
    with open_stream(os.fspath(src_path)) as handle:
        reader = SnapshotReader(handle, descriptions=descriptions, limits=limits)
        _require_stream(reader.content, src_path)
        return save_stream(dst_path, reader)


def _require_stream(content: str, path: PathLike) -> None:
    """Refuse to write a snapshot of ``content`` other than ``stream`` as a QEMU stream."""
    if content != "stream":
        raise UnsupportedError(f"{os.fspath(path)} holds a set of device states, not a QEMU stream")


def save_stream(path: PathLike, records: Iterable[StreamRecord]) -> int:
    """Write stream records as a QEMU stream file, atomically; return its size in bytes."""
    with atomic_write(path) as sink:
        writer = StreamWriter(sink)
        writer.write_all(records)
        return writer.offset


def is_snapshot_file(path: PathLike) -> bool:
    """True if the file at ``path`` starts like one of our snapshots."""
    with open(path, "rb") as file:
        return is_snapshot(file.read(8))
