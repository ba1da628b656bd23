"""streams.records: ``STREAM_RECORD_TYPES`` is the union, and every ``match`` over it covers it.

One record of each type: from real QEMU 7.2 streams (pc and pseries, pages
single and batched), QEMU 10.0's mapped-ram file and, for the types a paused
VM does not produce, by hand.
"""

from __future__ import annotations

from typing import Any, get_args

import pytest

from devices import DEFAULT_REGISTRY
from streams.formats import open_records
from streams.qemu import (
    STREAM_RECORD_TYPES,
    Command,
    HtabChunk,
    RamPage,
    RamFlush,
    RamPageRun,
    RamZero,
    RawBody,
    StreamRecord,
    TrailingData,
    encode_record,
)
from streams.snapshots._to_items import record_items
from tests.support.paths import CORPUS, ROOT
from vmstate.errors import EncodeError

_HAND_MADE = [HtabChunk(index=0, n_valid=1, n_invalid=0, ptes=bytes(16)), RawBody(b"\x01\x02", "no description"),
              Command(command=2, data=b""), TrailingData(b"after EOF"), RamFlush()]


def _one_of_each() -> dict[type, Any]:
    found: dict[type, Any] = {type(r): r for r in _HAND_MADE}
    paths = [CORPUS / "pseries-7.2-virtio-all-legacy.mig", CORPUS / "pc-7.2-virtio-net-legacy.mig",
             ROOT / "compat_fixtures" / "formats" / "pc-10.0-mapped-ram.mig.xz"]
    for path in paths:
        for batch in (False, True):
            with open_records(path, descriptions=DEFAULT_REGISTRY, batch_pages=batch) as opened:
                for record in opened.records:
                    found.setdefault(type(record), record)
    return found


def test_the_tuple_is_the_union() -> None:
    assert STREAM_RECORD_TYPES == get_args(StreamRecord)
    assert len(set(STREAM_RECORD_TYPES)) == 22


def test_every_record_type_encodes_and_becomes_snapshot_items() -> None:
    records = _one_of_each()
    assert set(records) == set(STREAM_RECORD_TYPES)
    for cls, record in records.items():
        assert isinstance(encode_record(record), bytes), cls
        if cls not in (RamPage, RamPageRun, RamZero):  # pages become items in chunks, not one by one
            assert list(record_items(record)), cls


@pytest.mark.parametrize("not_a_record", [object(), b"QEVM", None])
def test_anything_else_is_no_stream_record(not_a_record: object) -> None:
    with pytest.raises(EncodeError, match="not a stream record"):
        encode_record(not_a_record)  # type: ignore[arg-type]
    with pytest.raises(EncodeError, match="not a stream record"):
        list(record_items(not_a_record))  # type: ignore[arg-type]
