"""Snapshot files (``streams.snapshots``) as fixtures: decode them and write them back.

A snapshot that holds a QEMU stream decodes to the same summary a stream
does, so its golden has the stream golden's shape (and equals the golden of
the stream it was made from).  The write-back is today's snapshot writer on
the records today's reader made, in the file's own codec and under the
producer name the file carries, compared byte for byte: a change to the
items, the codecs or the framing shows as a difference; a new release of
the writer alone does not.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

from devices import DEFAULT_REGISTRY
from streams.formats import open_records
from streams.qemu import summarize
from streams.snapshots import write_records
from vmstate.compare_bytes import first_difference

from .fixture_format import DescriptionLookup, Outcome, Rewrite

__all__ = ["SNAPSHOTS", "SnapshotFixtures"]


class SnapshotFixtures:
    """The fixture format of our snapshot files, in each codec."""

    name = "snapshot"
    suffixes = (".msgpack", ".cbor", ".snapshot.json")

    def run(self, path: Path, descriptions: DescriptionLookup | None) -> Outcome:
        """Summarize the records the snapshot holds, and write them again in its codec."""
        lookup = DEFAULT_REGISTRY if descriptions is None else descriptions
        with open_records(path, descriptions=lookup, expect="snapshot") as opened:
            summary = summarize(opened.records)
        # a second pass for the write-back: no record is held, whatever the snapshot's size
        with open_records(path, descriptions=lookup, expect="snapshot", pair=True) as opened:
            reader = opened.reader
            written = io.BytesIO()
            write_records(opened.records, written, codec=opened.kind, content=reader.content, producer=reader.producer)
            assert opened.original is not None
            original = opened.original.read()
        data = written.getvalue()
        first = first_difference(data, original)
        rewrite = Rewrite(identical=first is None, size=len(data), first_difference=first,
                          where=None if first is None else f"snapshot ({opened.kind})")
        return Outcome(decoding=json.loads(json.dumps(summary)), rewrite=rewrite)


SNAPSHOTS = SnapshotFixtures()
