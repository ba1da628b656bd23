"""Write records as a snapshot file; verify one and read its records back."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO

from streams.files import seekable
from streams.records import StreamRecord
from vmstate.errors import DecodeError, EncodeError, MalformedError
from vmstate.limits import DEFAULT_LIMITS, Limits
from vmstate.lookup import DescriptionLookup, LookupFunction

from ._cbor import CBOR
from ._codec import Codec
from ._container import MAGIC, Container, ContainerWriter, verify
from ._from_items import ItemDecoder, item_fields
from ._index import SnapshotIndex, index_from_item
from ._jsonl import JSON_LINES
from ._msgpack import MSGPACK
from ._to_items import Itemizer
from ._window import ContentWindow

__all__ = ["CODECS", "SnapshotReader", "is_snapshot", "read_index", "read_records", "write_records"]

#: the self-describing codecs by name; ``msgpack`` is the compact default
CODECS: dict[str, Codec] = {"msgpack": MSGPACK, "cbor": CBOR, "json": JSON_LINES}
#: the part of the magic that survives text-mode damage, so the loader can name it
_SIGNATURE = MAGIC[:4]


def is_snapshot(head: bytes) -> bool:
    """True if a file starting with ``head`` (its first 4 bytes or more) is one of our snapshots.

    Also true for a snapshot whose magic a text-mode transfer damaged, so
    that loading it reports the damage rather than "not a QEMU stream".
    """
    return bytes(head[:4]) == _SIGNATURE


def codec_named(name: str) -> Codec:
    """The codec called ``name``; ``EncodeError`` for an unknown one."""
    try:
        return CODECS[name]
    except KeyError:
        raise EncodeError(f"unknown codec {name!r}; choose one of {', '.join(CODECS)}") from None


def write_records(
    records: Iterable[StreamRecord],
    sink: BinaryIO,
    *,
    codec: str = "msgpack",
    content: str = "stream",
    limits: Limits = DEFAULT_LIMITS,
    producer: str | None = None,
) -> SnapshotIndex:
    """Write ``records`` to ``sink`` as a snapshot file, in one pass; return its index.

    ``content`` says what the records are: ``stream`` (a whole QEMU stream)
    or ``devices`` (device sections only).  ``producer`` names the writer in
    the opening item (default: this package and version).  Writes are
    sequential: ``sink`` need not be seekable.  Not atomic: ``save_snapshot`` is.
    """
    chosen = codec_named(codec)
    limit = chosen.max_item_bytes(limits)
    writer = ContainerWriter(sink, chosen.name)
    itemizer = Itemizer(content) if producer is None else Itemizer(content, producer)
    last_offset = writer.offset
    for number, item in enumerate(itemizer.items(records)):
        data = chosen.encode(item)
        if len(data) > limit:
            raise EncodeError(f"item {number} ({item['t']}) takes {len(data)} bytes, more than a reader accepts ({limit})")
        last_offset = writer.offset
        writer.write_item(data)
    writer.finish(last_offset)
    assert itemizer.index is not None
    return itemizer.index


def _in_item(error: DecodeError, number: int, offset: int, kind: str | None) -> DecodeError:
    error.add_context(offset=offset, item=number, item_kind=kind)
    return error


class SnapshotReader:
    """A snapshot file, verified on opening; iterate it for its stream records.

    Magic, format version, tail and checksum are checked before any item is
    decoded; then the opening item is read (``content``, ``producer``).
    ``descriptions`` finds our descriptions of typed sections (e.g. ``devices.DEFAULT_REGISTRY``);
    without it, a typed section is a ``VersionError``, as in ``StreamReader``.
    """

    def __init__(
        self, source: BinaryIO, *, descriptions: DescriptionLookup | LookupFunction | None = None, limits: Limits = DEFAULT_LIMITS
    ) -> None:
        self._file = seekable(source)
        self.container: Container = verify(self._file)
        self._limits = limits
        self._decoder = ItemDecoder(descriptions, limits)
        window = ContentWindow(self._file, self.container.content_start, self.container.content_end)
        self._items = self._numbered(CODECS[self.container.codec].items(window, limits))
        self._started = False
        #: the index, once iteration has reached it
        self.index: SnapshotIndex | None = None
        first = next(self._items, None)
        if first is None:
            raise MalformedError("the snapshot holds no items", offset=self.container.content_start)
        self._feed(*first)

    @property
    def content(self) -> str:
        """``stream`` or ``devices``."""
        assert self._decoder.content is not None
        return self._decoder.content

    @property
    def producer(self) -> str:
        """Who wrote the file, e.g. ``vmstate-forge 0.1.0``."""
        assert self._decoder.producer is not None
        return self._decoder.producer

    def _numbered(self, items: Iterator[tuple[int, Any]]) -> Iterator[tuple[int, int, Any]]:
        number = 0
        while True:
            try:
                offset, item = next(items)
            except StopIteration:
                return
            except DecodeError as error:
                raise _in_item(error, number, error.offset or 0, None) from None
            yield number, offset, item
            number += 1

    def _feed(self, number: int, offset: int, item: Any) -> list[StreamRecord]:
        try:
            records = self._decoder.feed(item)
        except DecodeError as error:
            kind = item.get("t") if isinstance(item, dict) and isinstance(item.get("t"), str) else None
            raise _in_item(error, number, offset, kind) from None
        if self._decoder.index is not None and offset != self.container.index_offset:
            raise MalformedError(f"the index item is at {offset:#x}, the tail says {self.container.index_offset:#x}", offset=offset)
        return records

    def __iter__(self) -> Iterator[StreamRecord]:
        if self._started:
            raise RuntimeError("a SnapshotReader can be iterated once")
        self._started = True
        return self._records()

    def _records(self) -> Iterator[StreamRecord]:
        for number, offset, item in self._items:
            yield from self._feed(number, offset, item)
        try:
            self.index = self._decoder.finish()
        except DecodeError as error:
            error.add_context(offset=self.container.content_end)
            raise


def read_records(
    source: BinaryIO, *, descriptions: DescriptionLookup | LookupFunction | None = None, limits: Limits = DEFAULT_LIMITS
) -> Iterator[StreamRecord]:
    """Verify a snapshot file and yield the records of the QEMU stream it holds.

    The records are those ``StreamReader`` yielded when it was written, so
    ``StreamWriter`` writes the original bytes back.  Verification happens
    here, before the first record; ``descriptions`` as for ``SnapshotReader``.  Errors are our ``DecodeError`` family,
    with the file offset and item number.
    """
    return iter(SnapshotReader(source, descriptions=descriptions, limits=limits))


def read_index(source: BinaryIO, *, limits: Limits = DEFAULT_LIMITS) -> SnapshotIndex:
    """Verify a snapshot file and read only its index item (found from the tail)."""
    file = seekable(source)
    container = verify(file)
    window = ContentWindow(file, container.index_offset, container.content_end)
    items = CODECS[container.codec].items(window, limits)
    try:
        _, item = next(items)
        fields = item_fields(item)
        if fields.kind != "index":
            raise MalformedError(f"the tail points at a {fields.kind!r} item, not the index")
        index = index_from_item(fields, limits.max_array_count)
        if next(items, None) is not None:
            raise MalformedError("an item follows the index")
    except StopIteration:
        raise MalformedError("no item where the tail says the index is", offset=container.index_offset) from None
    except DecodeError as error:
        error.add_context(offset=container.index_offset)
        raise
    return index
