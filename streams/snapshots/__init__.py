"""Self-describing snapshots: QEMU streams and device states as msgpack, CBOR or JSON.

A snapshot file holds what a QEMU migration stream holds (or just a set of
device states) as a sequence of *items* in one of three codecs, framed so
that damage is caught before anything is decoded::

    preamble   89 56 4D 53 0D 0A 1A 0A  (magic)  | be16 format version | codec byte | flags
    items      snapshot, <one item per stream record>, index
    tail       89 'VMSEND' 0A | be64 index offset | be64 items length | SHA-256 of all before it

* Codecs: ``msgpack`` (compact, the default), ``cbor`` (an RFC 8742 CBOR
  sequence) and ``json`` (JSON Lines; bytes as ``{"$base64": ...}``).
* Items: each stream record is one map with a ``"t"`` type key; a device
  section keeps its idstr, section version and the name and version of the
  description that decoded it, and its state as a plain value tree (a
  ``vmdesc``-decoded section also carries its vmdesc entry, so it is
  self-contained).  RAM pages of one block are grouped into ``ram`` items
  of at most 1 MiB; long byte strings are split into 1 MiB ``more`` items.
  So writing and reading stream RAM and hold one item at a time.
* The index (per-device description names and versions, page counts) is
  the last item, so a snapshot is written in one sequential pass; the tail
  says where it is, so ``read_index`` reads it alone.
* Reading verifies magic, format version, tail and checksum first (one
  pass over the file), then decodes items within size limits derived from
  ``Limits`` (msgpack's ``max_*_len``, a per-item byte budget for cbor2, a
  maximum JSON line length).  Device states are loaded as from a QEMU
  stream: encoded with our description (looked up again by idstr and
  version, so older description versions load) and decoded by the engine.
  Errors are our ``DecodeError`` family with the file offset and item number.

``read_records`` yields exactly the records ``StreamReader`` yielded for the
original stream, so ``StreamWriter`` reproduces QEMU's bytes.  Converting a
file whatever its format is ``streams.convert.convert``: it picks the reader
through ``streams.formats``, which itself imports this package.
"""

from ._atomic import UnsafeTargetError, atomic_write
from ._container import FORMAT_VERSION, MAGIC, ChecksumError, Container, verify
from ._index import IndexEntry, SnapshotIndex
from ._io import (
    CODECS,
    SnapshotReader,
    is_snapshot,
    read_index,
    read_records,
    write_records,
)
from ._snapshot import (
    OUTPUT_FORMATS,
    DeviceKey,
    Snapshot,
    is_snapshot_file,
    load_snapshot,
    save_snapshot,
    save_stream,
    snapshot_to_stream,
    stream_to_snapshot,
)

__all__ = [
    "CODECS",
    "FORMAT_VERSION",
    "MAGIC",
    "OUTPUT_FORMATS",
    "ChecksumError",
    "Container",
    "DeviceKey",
    "IndexEntry",
    "Snapshot",
    "SnapshotIndex",
    "SnapshotReader",
    "UnsafeTargetError",
    "atomic_write",
    "is_snapshot",
    "is_snapshot_file",
    "load_snapshot",
    "read_index",
    "read_records",
    "save_snapshot",
    "save_stream",
    "snapshot_to_stream",
    "stream_to_snapshot",
    "verify",
    "write_records",
]
