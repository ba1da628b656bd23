"""Pick the reader for a file: the one place that knows which stream formats there are.

A file is opened once: xz or gzip is unpacked by ``open_stream`` whatever the
format inside, then the first bytes pick a registered ``StreamFormat`` (QEMU's
``QEVM`` stream, our snapshots).  Containers and new QEMU formats plug in with
``register_format``.  Formats are told apart by their magic bytes alone: every
format here has one, and a file name says nothing the bytes do not.

Descriptions are injected by the caller (``streams`` never imports
``devices``); the result is an ``OpenedStream``: what was found and its records.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any, BinaryIO

import attrs

from vmstate.errors import MalformedError
from vmstate.limits import DEFAULT_LIMITS, Limits
from vmstate.lookup import DescriptionLookup, LookupFunction

from .files import open_stream, open_stream_pair
from .magic import container_name
from .qemu.reader import StreamReader
from .records import QEMU_MAGIC, StreamRecord
from .snapshots import SnapshotReader, is_snapshot

__all__ = ["HEAD_SIZE", "OpenedStream", "Reading", "ReadOptions", "StreamFormat", "formats", "open_records",
           "register_format"]

#: bytes of a file's start a format's ``sniff`` sees
HEAD_SIZE = 16


@attrs.frozen(kw_only=True)
class ReadOptions:
    """What the caller asks of every reader."""

    #: (idstr, instance_id, version) -> description; None: each reader's own default
    descriptions: DescriptionLookup | LookupFunction | None = None
    limits: Limits = DEFAULT_LIMITS
    #: consecutive RAM pages as one ``RamPageRun`` (QEMU streams)
    batch_pages: bool = False


@attrs.frozen
class Reading:
    """A reader started on a file: its kind and its records."""

    #: ``qemu`` or the snapshot codec (``msgpack``, ``cbor``, ``json``)
    kind: str
    #: the reader itself (``StreamReader``, ``SnapshotReader``), an iterable of records
    reader: Iterable[StreamRecord]
    #: bytes of input consumed so far (None if unknown)
    position: Callable[[], int | None]
    #: the target page size, once the records read so far have told it (None: the format has none)
    page_size: Callable[[], int] | None = None


@attrs.frozen
class StreamFormat:
    """A kind of file records are read from."""

    name: str
    #: whether a file starting with these bytes (``HEAD_SIZE`` of them, fewer if shorter) is of this format
    sniff: Callable[[bytes], bool]
    #: start reading a seekable handle positioned at 0
    read: Callable[[BinaryIO, ReadOptions], Reading]


def _qemu(handle: BinaryIO, options: ReadOptions) -> Reading:
    reader = StreamReader(handle, descriptions=options.descriptions, limits=options.limits,
                          batch_pages=options.batch_pages)
    return Reading("qemu", reader, lambda: reader.offset, lambda: reader.page_size)


def _snapshot(handle: BinaryIO, options: ReadOptions) -> Reading:
    # verifies magic, version and checksum before the first record
    reader = SnapshotReader(handle, descriptions=options.descriptions, limits=options.limits)
    return Reading(reader.container.codec, reader, _position(handle))


QEMU = StreamFormat("qemu", lambda head: head[:4] == QEMU_MAGIC.to_bytes(4, "big"), _qemu)
SNAPSHOT = StreamFormat("snapshot", is_snapshot, _snapshot)
_FORMATS: list[StreamFormat] = [QEMU, SNAPSHOT]


def register_format(stream_format: StreamFormat) -> None:
    """Make ``open_records`` recognise another format (tried after those before it)."""
    if all(f.name != stream_format.name for f in _FORMATS):
        _FORMATS.append(stream_format)


def formats() -> list[StreamFormat]:
    """The registered formats, in the order their ``sniff`` is tried."""
    return list(_FORMATS)


def _named(name: str) -> StreamFormat:
    for stream_format in _FORMATS:
        if stream_format.name == name:
            return stream_format
    raise ValueError(f"no stream format {name!r}; registered: {', '.join(f.name for f in _FORMATS)}")


@attrs.define(eq=False)
class OpenedStream:
    """An open file and the reader its format chose; close it (or use ``with``) when done."""

    path: str
    format: StreamFormat
    reading: Reading
    handle: BinaryIO
    #: the file's size once decompressed (None if the handle cannot tell)
    size: int | None
    #: with ``pair=True``: a second handle on the same bytes at 0, for comparing (unpacked once)
    original: BinaryIO | None = None
    _close: Callable[[], None] = attrs.field(default=lambda: None, repr=False)
    _records: Iterator[StreamRecord] | None = attrs.field(default=None, repr=False)

    @property
    def kind(self) -> str:
        """``qemu`` or the snapshot codec."""
        return self.reading.kind

    @property
    def reader(self) -> Any:
        """The reader object (``StreamReader``, ``SnapshotReader``) for what only it knows."""
        return self.reading.reader

    @property
    def records(self) -> Iterator[StreamRecord]:
        """The records, in file order (one iterator: reading them twice continues where it stopped)."""
        if self._records is None:
            self._records = iter(self.reading.reader)
        return self._records

    def position(self) -> int | None:
        """Bytes of input consumed so far (None if unknown)."""
        return self.reading.position()

    def close(self) -> None:
        """Close the file (and its second handle)."""
        self._close()

    def __enter__(self) -> OpenedStream:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def open_records(
    path: str | os.PathLike[str],
    *,
    descriptions: DescriptionLookup | LookupFunction | None = None,
    limits: Limits = DEFAULT_LIMITS,
    batch_pages: bool = False,
    expect: str | None = None,
    fallback: str | None = None,
    pair: bool = False,
) -> OpenedStream:
    """Open ``path`` (plain, xz or gzip) and start the reader of its format.

    The first bytes pick the format.  ``expect`` names a format to read the
    file with whatever they say, ``fallback`` one for a file no format
    recognises (its reader then says what is wrong); with neither, such a
    file is a ``MalformedError``.  ``pair`` also opens ``original``.
    """
    name = os.fspath(path)
    stack = contextlib.ExitStack()
    try:
        if pair:
            handle, original = stack.enter_context(open_stream_pair(name))
        else:
            handle, original = stack.enter_context(open_stream(name)), None
        options = ReadOptions(descriptions=descriptions, limits=limits, batch_pages=batch_pages)
        head = handle.read(HEAD_SIZE)
        handle.seek(0)
        size = _size(handle)
        chosen = _named(expect) if expect is not None else _sniffed(head, fallback)
        opened = OpenedStream(name, chosen, chosen.read(handle, options), handle, size, original, stack.close)
    except BaseException:
        stack.close()
        raise
    return opened


def _sniffed(head: bytes, fallback: str | None) -> StreamFormat:
    for stream_format in _FORMATS:
        if stream_format.sniff(head):
            return stream_format
    if fallback is not None:
        return _named(fallback)
    if not head:
        raise MalformedError("empty file: not a QEMU stream or a snapshot", offset=0)
    what = container_name(head)
    raise MalformedError(f"not a QEMU stream or a snapshot (starts with {head[:4].hex()})" + (f": {what}" if what else ""),
                         offset=0)


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
