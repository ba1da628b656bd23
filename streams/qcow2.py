"""The VM state of a qcow2 internal snapshot (``savevm TAG``), read as the migration stream it is.

QEMU's ``savevm`` writes the VM state as a normal migration stream into the
image's own clusters, at guest offsets past the end of the virtual disk: the
first L1 index past the disk (``qcow2_vm_state_offset`` in block/qcow2.h),
through the snapshot's own L1 and L2 tables.  ``qemu-img`` cannot extract
it; this module reads it cluster by cluster, as a seekable file.

The layout facts are those of QEMU's docs/interop/qcow2.txt: the header
(version 2 or 3), the snapshot table (each entry 8-byte aligned: L1 offset
and size, id and name lengths, dates, ``vm_state_size``, extra data with the
64-bit state size and the disk size), L1 and L2 entries (offset in bits
9-55, bit 62 compressed, bit 0 "reads as zero" in version 3).  What this
reader does not handle is refused by name: encryption, an external data
file, extended L2 entries, compressed clusters in the state.

The file is untrusted: every count and offset is bounded before it is used
(QEMU's own limits: 65,536 snapshots, a 64 MiB snapshot table, 1 KiB of extra
data), tables are read an entry or a cluster at a time, and an offset past
the file is a ``MalformedError`` naming it.
"""

from __future__ import annotations

import io
import os
import struct
from collections import OrderedDict
from pathlib import Path
from typing import BinaryIO

import attrs

from vmstate.errors import MalformedError, TruncatedError, UnsupportedError

from ._views import ReadOnlyView

__all__ = ["QCOW2_MAGIC", "Qcow2Image", "Qcow2Snapshot", "is_qcow2", "list_snapshots", "open_vm_state",
           "split_snapshot_name"]

QCOW2_MAGIC = b"QFI\xfb"
_MAX_SNAPSHOTS = 65536  # QCOW_MAX_SNAPSHOTS
_MAX_SNAPSHOT_TABLE = 64 << 20  # QCOW_MAX_SNAPSHOTS_SIZE
_MAX_EXTRA_DATA = 1024  # QCOW_MAX_SNAPSHOT_EXTRA_DATA
_OFFSET_MASK = 0x00FF_FFFF_FFFF_FE00
_COMPRESSED = 1 << 62
_READS_AS_ZERO = 1
_INCOMPAT_DATA_FILE = 1 << 2
_INCOMPAT_EXTENDED_L2 = 1 << 4
_L2_CACHE = 8


@attrs.frozen
class Qcow2Snapshot:
    """One entry of the snapshot table."""

    id_str: str
    name: str
    l1_table_offset: int
    l1_size: int
    vm_state_size: int
    disk_size: int
    date_sec: int
    vm_clock_nsec: int
    #: where the entry starts in the file
    entry_offset: int


def is_qcow2(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a regular file starting with the qcow2 magic."""
    try:
        with open(path, "rb") as file:
            return file.read(4) == QCOW2_MAGIC
    except OSError:
        return False


def split_snapshot_name(name: str) -> tuple[str, str] | None:
    """``DISK.qcow2@TAG`` -> (DISK.qcow2, TAG) when no file of the whole name exists and DISK is qcow2."""
    if os.path.exists(name) or "@" not in name:
        return None
    disk, _, tag = name.rpartition("@")
    return (disk, tag) if tag and is_qcow2(disk) else None


class Qcow2Image:
    """A qcow2 file's header and snapshot table, and reads through a snapshot's L1/L2 tables."""

    def __init__(self, file: BinaryIO, name: str) -> None:
        self._file, self.name = file, name
        self.file_size = file.seek(0, io.SEEK_END)
        header = self._read(0, 72, "header")
        (magic, self.version, _backing_offset, _backing_size, self.cluster_bits, self.size, crypt, _l1_size,
         _l1_offset, _refcount_offset, _refcount_clusters, nb_snapshots, snapshots_offset) = struct.unpack(
            ">4sIQIIQIIQQIIQ", header)
        if magic != QCOW2_MAGIC:
            raise MalformedError(f"not a qcow2 image", offset=0, section="qcow2 header")
        if self.version not in (2, 3):
            raise UnsupportedError(f"qcow2 version {self.version} (2 and 3 are read)", offset=4,
                                   section="qcow2 header")
        if not 9 <= self.cluster_bits <= 21:
            raise MalformedError(f"cluster_bits {self.cluster_bits} is outside 9..21", offset=20,
                                 section="qcow2 header")
        if crypt:
            raise UnsupportedError(f"an encrypted qcow2 image (crypt_method {crypt})", offset=32,
                                   section="qcow2 header")
        if self.version == 3:
            incompatible = struct.unpack(">Q", self._read(72, 8, "header"))[0]
            for bit, what in ((_INCOMPAT_DATA_FILE, "an external data file"), (_INCOMPAT_EXTENDED_L2, "extended L2 entries")):
                if incompatible & bit:
                    raise UnsupportedError(f"a qcow2 image with {what}", offset=72, section="qcow2 header")
        if nb_snapshots > _MAX_SNAPSHOTS:
            raise MalformedError(f"{nb_snapshots} snapshots (QEMU allows {_MAX_SNAPSHOTS})", offset=60,
                                 section="qcow2 header")
        self.cluster_size = 1 << self.cluster_bits
        self.l2_entries = self.cluster_size // 8
        self.snapshots = self._snapshot_table(nb_snapshots, snapshots_offset)
        self._l2_cache: OrderedDict[int, bytes] = OrderedDict()

    def _read(self, offset: int, length: int, what: str) -> bytes:
        if offset < 0 or offset + length > self.file_size:
            raise MalformedError(f"{what} at {offset:#x} (+{length:#x}) lies outside the file "
                                 f"({self.file_size:#x} bytes)", offset=offset, section=f"qcow2 {what}")
        self._file.seek(offset)
        data = self._file.read(length)
        if len(data) != length:
            raise TruncatedError(f"{what} is cut short", offset=offset, section=f"qcow2 {what}")
        return data

    def _snapshot_table(self, count: int, offset: int) -> tuple[Qcow2Snapshot, ...]:
        snapshots = []
        at = offset
        for index in range(count):
            if at - offset > _MAX_SNAPSHOT_TABLE:
                raise MalformedError(f"the snapshot table is over {_MAX_SNAPSHOT_TABLE} bytes",
                                     offset=at, section="qcow2 snapshot table")
            (l1_offset, l1_size, id_size, name_size, date_sec, _date_nsec, vm_clock, vm_state_size,
             extra_size) = struct.unpack(">QIHHIIQII", self._read(at, 40, f"snapshot {index}"))
            if extra_size > _MAX_EXTRA_DATA:
                raise MalformedError(f"snapshot {index} has {extra_size} bytes of extra data "
                                     f"(QEMU allows {_MAX_EXTRA_DATA})", offset=at + 36, section="qcow2 snapshot table")
            extra = self._read(at + 40, extra_size, f"snapshot {index} extra data")
            if extra_size >= 8:
                vm_state_size = struct.unpack_from(">Q", extra)[0]
            disk_size = struct.unpack_from(">Q", extra, 8)[0] if extra_size >= 16 else self.size
            names = self._read(at + 40 + extra_size, id_size + name_size, f"snapshot {index} names")
            id_str = names[:id_size].decode("utf-8", "replace")
            name = names[id_size:].decode("utf-8", "replace")
            snapshots.append(Qcow2Snapshot(id_str, name, l1_offset, l1_size, vm_state_size, disk_size, date_sec,
                                           vm_clock, at))
            at += (40 + extra_size + id_size + name_size + 7) & ~7
        return tuple(snapshots)

    def snapshot(self, tag: str) -> Qcow2Snapshot:
        """The snapshot named ``tag``, else the one with that id (as QEMU's ``loadvm`` finds it)."""
        for key in ("name", "id_str"):
            for snapshot in self.snapshots:
                if getattr(snapshot, key) == tag:
                    return snapshot
        known = ", ".join(s.name for s in self.snapshots) or "none"
        raise MalformedError(f"no snapshot {tag!r} (snapshots: {known})", section="qcow2 snapshot table")

    def vm_state_start(self, snapshot: Qcow2Snapshot) -> int:
        """The guest offset of the VM state: the first L1 index past the snapshot's disk."""
        span = self.cluster_size * self.l2_entries
        return -(-snapshot.disk_size // span) * span

    def read_guest(self, snapshot: Qcow2Snapshot, offset: int, length: int) -> bytes:
        """``length`` bytes at guest ``offset`` of ``snapshot``, within one cluster."""
        l1_index = offset >> (self.cluster_bits * 2 - 3)
        if l1_index >= snapshot.l1_size:
            raise MalformedError(f"snapshot {snapshot.name!r}'s state at guest {offset:#x} is past "
                                 f"its L1 table ({snapshot.l1_size} entries)", offset=snapshot.entry_offset,
                                 section=f"qcow2 snapshot {snapshot.name}")
        l1_entry = struct.unpack(">Q", self._read(snapshot.l1_table_offset + 8 * l1_index, 8, "L1 table"))[0]
        l2_offset = l1_entry & _OFFSET_MASK
        if l2_offset == 0:
            return bytes(length)
        l2_index = (offset >> self.cluster_bits) & (self.l2_entries - 1)
        entry = struct.unpack_from(">Q", self._l2_table(l2_offset), 8 * l2_index)[0]
        if entry & _COMPRESSED:
            raise UnsupportedError(f"a compressed cluster in snapshot {snapshot.name!r}'s state",
                                   offset=l2_offset + 8 * l2_index, section="qcow2 L2 table")
        host = entry & _OFFSET_MASK
        if host == 0 or (self.version == 3 and entry & _READS_AS_ZERO):
            return bytes(length)
        return self._read(host + (offset & (self.cluster_size - 1)), length, "cluster")

    def _l2_table(self, offset: int) -> bytes:
        table = self._l2_cache.get(offset)
        if table is None:
            table = self._l2_cache[offset] = self._read(offset, self.cluster_size, "L2 table")
            if len(self._l2_cache) > _L2_CACHE:
                self._l2_cache.popitem(last=False)
        return table


class _VmStateFile(ReadOnlyView):
    """The VM state of one snapshot as a read-only, seekable file."""

    def __init__(self, image: Qcow2Image, snapshot: Qcow2Snapshot, owner: BinaryIO) -> None:
        super().__init__(snapshot.vm_state_size)
        self._image, self._snapshot, self._owner = image, snapshot, owner
        self._start = image.vm_state_start(snapshot)

    def read_at(self, offset: int, length: int) -> bytes:
        guest = self._start + offset  # within one cluster at a time
        chunk = min(length, self._image.cluster_size - (guest & (self._image.cluster_size - 1)))
        return self._image.read_guest(self._snapshot, guest, chunk)

    def close(self) -> None:
        if not self.closed:
            self._owner.close()
        super().close()


def open_vm_state(disk: str | os.PathLike[str], tag: str) -> BinaryIO:
    """The VM state of snapshot ``tag`` of qcow2 image ``disk``, as a buffered seekable file."""
    raw = open(disk, "rb")
    try:
        image = Qcow2Image(raw, os.fspath(disk))
        snapshot = image.snapshot(tag)
        if snapshot.vm_state_size == 0:
            raise MalformedError(f"snapshot {tag!r} holds no VM state (a disk-only snapshot)",
                                 offset=snapshot.entry_offset, section=f"qcow2 snapshot {tag}")
    except BaseException:
        raw.close()
        raise
    return io.BufferedReader(_VmStateFile(image, snapshot, raw), buffer_size=1 << 16)  # type: ignore[return-value]


def list_snapshots(disk: str | os.PathLike[str]) -> tuple[Qcow2Snapshot, ...]:
    """The snapshot table of qcow2 image ``disk``."""
    with open(disk, "rb") as raw:
        return Qcow2Image(raw, os.fspath(Path(disk))).snapshots
