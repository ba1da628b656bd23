"""Open either kind of input as a sequence of stream records.

``migration-diff`` compares QEMU streams (plain, xz or gzip) and our snapshot
files (msgpack, CBOR or JSON, ``streams.snapshots``) in any mix: both read as
the same ``StreamRecord``s, so the comparison never knows which it got
(``streams.formats`` picks the reader).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Callable, Iterator

import attrs

from streams.records import StreamRecord
from vmstate.dump.kinds import display_kinds

__all__ = ["Source", "open_source", "display_kinds"]


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


@contextlib.contextmanager
def open_source(path: str | Path) -> Iterator[Source]:
    """Open ``path`` as a QEMU stream or a snapshot file, whichever it is."""
    from streams.formats import open_records

    with open_records(path, descriptions=_registry(), batch_pages=True) as opened:
        yield Source(str(path), opened.kind, opened.records, opened.position, opened.size, opened.reading.page_size)
