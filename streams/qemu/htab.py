"""The ``spapr/htab`` section body of ppc64 pseries streams (hw/ppc/spapr.c).

Every body starts with a be32 header.  A nonzero header ends the body: the
hash table shift in the setup section, or -1 when there is no hash table.
A zero header is followed by chunks (be32 index, be16 valid count, be16
invalid count, 16-byte PTEs for the valid ones) and an all-zero end record.
"""

from __future__ import annotations

import struct
from typing import Iterator

from streams.records import HtabChunk, HtabEnd, HtabHeader
from vmstate.wire import ByteReader

__all__ = ["decode_htab_body", "encode_htab_record", "HASH_PTE_SIZE"]

HASH_PTE_SIZE = 16
_HEADER = struct.Struct(">i")
_CHUNK = struct.Struct(">IHH")


def decode_htab_body(reader: ByteReader) -> Iterator[HtabHeader | HtabChunk | HtabEnd]:
    """Yield the records of one htab section body."""
    header = _HEADER.unpack(reader.read(4))[0]
    yield HtabHeader(header)
    if header != 0:
        return
    while True:
        index, n_valid, n_invalid = _CHUNK.unpack(reader.read(_CHUNK.size))
        if index == n_valid == n_invalid == 0:
            yield HtabEnd()
            return
        # n_valid is a be16, so a chunk holds at most 1 MiB of PTEs.
        yield HtabChunk(index, n_valid, n_invalid, reader.read(n_valid * HASH_PTE_SIZE))


def encode_htab_record(record: HtabHeader | HtabChunk | HtabEnd) -> bytes:
    """Encode one htab record."""
    if isinstance(record, HtabHeader):
        return _HEADER.pack(record.value)
    if isinstance(record, HtabEnd):
        return bytes(_CHUNK.size)
    return _CHUNK.pack(record.index, record.n_valid, record.n_invalid) + record.ptes
