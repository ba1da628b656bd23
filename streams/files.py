"""Open a stream file, compressed or not.

Migration streams are often kept compressed (``migrate "exec:xz > FILE"``,
our own fixtures of booted guests).  xz, gzip, bzip2 and zstd files are recognised by
their magic bytes and decompressed into a spooled temporary file: memory
stays bounded (it spills to disk past 16 MiB) and the reader gets the
seekable file it wants to find the trailer.  A full temporary directory is
an ``OSError`` naming it, not damage in the input.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import lzma
import shutil
import tempfile
import zlib
from pathlib import Path
from typing import Any, BinaryIO, Iterator

from vmstate.errors import MalformedError

__all__ = ["open_stream", "open_stream_pair", "seekable", "COMPRESSED_SUFFIXES"]

_XZ_MAGIC = b"\xfd7zXZ\x00"
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_BZIP2_MAGIC = b"BZh"
_SPOOL_IN_MEMORY = 16 << 20
#: file name endings of compressed streams
COMPRESSED_SUFFIXES = (".xz", ".gz", ".zst", ".bz2")


def open_stream(path: str | Path) -> BinaryIO:
    """Open ``path`` for reading, decompressing xz or gzip transparently.

    ``DISK.qcow2@TAG`` (when no file has that whole name) is the VM state of
    the disk's internal snapshot TAG (``streams.qcow2``); a libvirt save image
    is the stream after its header and XML (``streams.libvirt_save``).
    """
    from .libvirt_save import is_save_image, open_save_image
    from .qcow2 import QCOW2_MAGIC, list_snapshots, open_vm_state, split_snapshot_name

    snapshot = split_snapshot_name(str(path))
    if snapshot is not None:
        return open_vm_state(*snapshot)
    raw: BinaryIO = open(path, "rb")
    magic = raw.read(16)
    raw.seek(0)
    if is_save_image(magic):  # the stream after libvirt's header and XML, compressed as its format says
        raw.close()
        _header, raw = open_save_image(path)
        magic = raw.read(6)
        raw.seek(0)
    if magic.startswith(QCOW2_MAGIC):
        raw.close()
        tags = ", ".join(s.name for s in list_snapshots(path) if s.vm_state_size) or "none with VM state"
        raise MalformedError(f"a qcow2 disk image: name one of its snapshots as {path}@TAG "
                             f"(snapshots: {tags})", offset=0, section="qcow2")
    decompressed: BinaryIO
    if magic.startswith(_XZ_MAGIC):
        decompressed, kind = lzma.LZMAFile(raw), "xz"  # type: ignore[assignment]
    elif magic.startswith(_GZIP_MAGIC):
        decompressed, kind = gzip.GzipFile(fileobj=raw), "gzip"  # type: ignore[assignment]
    elif magic.startswith(_BZIP2_MAGIC):
        decompressed, kind = bz2.BZ2File(raw), "bzip2"  # type: ignore[assignment]
    elif magic.startswith(_ZSTD_MAGIC):
        import zstandard

        problem = _zstd_frames_problem(raw)
        if problem is not None:
            at, why = problem
            raw.close()
            raise MalformedError(f"{path}: cannot decompress (zstd): {why}", offset=at, section="zstd")
        decompressed, kind = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True), "zstd"  # type: ignore[assignment]
    else:
        return raw
    spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY)
    try:
        with decompressed:
            while True:
                try:
                    chunk = decompressed.read(1 << 20)
                except (lzma.LZMAError, zlib.error, gzip.BadGzipFile, EOFError, _zstd_error(), OSError) as error:
                    if isinstance(error, OSError) and error.errno is not None:
                        raise  # the disk, not the data (bz2 reports bad data as an OSError without errno)
                    # offset: how far into the compressed file the decompressor had read
                    offset = raw.tell() if not raw.closed else None
                    raise MalformedError(f"{path}: cannot decompress ({kind}): {error}", offset=offset, section=kind) from None
                if not chunk:
                    break
                try:
                    spool.write(chunk)
                except OSError as error:
                    # the disk, not the input: say where the bytes were going
                    raise OSError(
                        error.errno,
                        f"{error.strerror} while unpacking {path} into the temporary directory {tempfile.gettempdir()}"
                        " (TMPDIR chooses another)",
                    ) from None
    except BaseException:
        spool.close()
        raise
    finally:
        raw.close()
    spool.seek(0)
    return spool  # type: ignore[return-value]


def _zstd_frames_problem(raw: BinaryIO) -> tuple[int, str] | None:
    """Walk the frame and block headers of a zstd file (RFC 8878), reading only them: where it is cut or wrong.

    zstandard's stream reader ends quietly on a cut frame; this walk is how a cut is told from an end.
    """
    end = raw.seek(0, io.SEEK_END)
    at = 0
    try:
        while at < end:
            raw.seek(at)
            head = raw.read(14)
            magic = int.from_bytes(head[:4], "little")
            if 0x184D2A50 <= magic <= 0x184D2A5F and len(head) >= 8:  # a skippable frame
                at += 8 + int.from_bytes(head[4:8], "little")
                continue
            if head[:4] != _ZSTD_MAGIC or len(head) < 5:
                return at, "not a zstd frame"
            descriptor = head[4]
            single_segment, checksum = descriptor >> 5 & 1, descriptor >> 2 & 1
            size_field = (0, 2, 4, 8)[descriptor >> 6] or (1 if single_segment else 0)
            at += 5 + (0 if single_segment else 1) + (0, 1, 2, 4)[descriptor & 3] + size_field
            while True:
                raw.seek(at)
                block = raw.read(3)
                if len(block) < 3:
                    return at, "the file is cut inside a frame (no last block)"
                value = int.from_bytes(block, "little")
                kind, size = value >> 1 & 3, value >> 3
                if kind == 3:
                    return at, "a reserved block type"
                at += 3 + (1 if kind == 1 else size)
                if value & 1:
                    break
            at += 4 * checksum
        return (end, "the file is cut inside a frame") if at > end else None
    finally:
        raw.seek(0)


def _zstd_error() -> type[Exception]:
    import zstandard

    return zstandard.ZstdError


@contextlib.contextmanager
def open_stream_pair(path: str | Path) -> Iterator[tuple[BinaryIO, BinaryIO]]:
    """Two independent handles on the bytes of ``path``, a compressed file decompressed once.

    ``vmstate check`` reads a stream through one and compares with the other.
    """
    first = open_stream(path)
    try:
        if _is_plain(first):
            second: BinaryIO = open_stream(path)  # a file, or a qcow2 snapshot's state read through its tables
        else:
            second = _Cursor(first)  # type: ignore[assignment]
        with first, second:
            yield first, second
    finally:
        first.close()


def _is_plain(file: BinaryIO) -> bool:
    return isinstance(file, io.BufferedReader)


class _Cursor(io.RawIOBase):
    """A second read position over a shared seekable file (its own position restored after each read)."""

    def __init__(self, shared: BinaryIO) -> None:
        super().__init__()
        self._shared = shared
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_END:
            here = self._shared.tell()
            end = self._shared.seek(0, io.SEEK_END)
            self._shared.seek(here)
            offset += end
        elif whence == io.SEEK_CUR:
            offset += self._position
        self._position = max(0, offset)
        return self._position

    def readinto(self, buffer: Any) -> int:
        here = self._shared.tell()
        try:
            self._shared.seek(self._position)
            data = self._shared.read(len(buffer))
        finally:
            self._shared.seek(here)
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)


def seekable(source: BinaryIO) -> BinaryIO:
    """``source`` itself if it can seek, else its bytes spooled to a temporary file (memory up to 16 MiB)."""
    try:
        if source.seekable():
            return source
    except (AttributeError, OSError):
        pass
    spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY)  # noqa: SIM115 (returned open)
    while chunk := source.read(1 << 20):
        spool.write(chunk)
    spool.seek(0)
    return spool  # type: ignore[return-value]
