"""Convert a file to a QEMU stream or a snapshot codec, whatever format ``open_records`` finds it in.

It sits above ``streams.formats`` (which imports the snapshot reader), so that
neither ``streams.formats`` nor ``streams.snapshots`` needs the other lazily.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from vmstate.errors import EncodeError
from vmstate.limits import DEFAULT_LIMITS, Limits
from vmstate.lookup import DescriptionLookup, LookupFunction

from .formats import OpenedStream, open_records
from .records import StreamRecord
from .qemu.layout import LAYOUTS, MappedRamWriter, to_plain
from .snapshots import OUTPUT_FORMATS, save_snapshot, save_stream
from .snapshots._atomic import atomic_write
from .snapshots._snapshot import _require_stream

__all__ = ["OUTPUT_FORMATS", "LAYOUTS", "convert", "write_records"]

PathLike = str | os.PathLike[str]


def convert(
    src_path: PathLike,
    dst_path: PathLike,
    to: str,
    *,
    descriptions: DescriptionLookup | LookupFunction | None = None,
    limits: Limits = DEFAULT_LIMITS,
    layout: str | None = None,
) -> None:
    """Convert between a QEMU stream and snapshot codecs, atomically; the input kind is detected.

    ``to`` is ``qemu`` or a codec name (``msgpack``, ``cbor``, ``json``).  ``layout`` (``qemu`` only):
    ``plain`` or ``mapped-ram`` lays the RAM out that way (``streams.qemu.layout``); None keeps the input's.
    """
    if to not in OUTPUT_FORMATS:
        raise EncodeError(f"unknown output format {to!r}; choose one of {', '.join(OUTPUT_FORMATS)}")
    if layout is not None and (to != "qemu" or layout not in LAYOUTS):
        raise EncodeError(f"a layout ({', '.join(LAYOUTS)}) is for QEMU output only, not {layout!r} to {to}")
    # what is not a snapshot is read as a QEMU stream: its reader says what is wrong with it
    with open_records(src_path, descriptions=descriptions, limits=limits, fallback="qemu") as opened:
        write_records(opened, opened.records, dst_path, to, limits=limits, layout=layout)


def write_records(
    opened: OpenedStream,
    records: Iterable[StreamRecord],
    dst_path: PathLike,
    to: str,
    *,
    limits: Limits = DEFAULT_LIMITS,
    layout: str | None = None,
) -> None:
    """Write ``records`` (read from ``opened``, perhaps changed on the way) to ``dst_path`` as ``to``, atomically."""
    content = "stream" if opened.kind == "qemu" else opened.reader.content
    if to == "qemu":
        _require_stream(content, opened.path)
        if layout == "mapped-ram":
            with atomic_write(dst_path) as sink:
                MappedRamWriter(sink, limits=limits).write_all(to_plain(records))
        else:
            save_stream(dst_path, records if layout is None else to_plain(records))
    else:
        save_snapshot(dst_path, records, codec=to, content=content, limits=limits)
