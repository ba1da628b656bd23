"""Open a stream file, compressed or not.

Migration streams are often kept compressed (``migrate "exec:xz > FILE"``,
our own fixtures of booted guests).  xz and gzip files are recognised by
their magic bytes and decompressed into a spooled temporary file: memory
stays bounded (it spills to disk past 16 MiB) and the reader gets the
seekable file it wants to find the trailer.
"""

from __future__ import annotations

import gzip
import lzma
import shutil
import tempfile
import zlib
from pathlib import Path
from typing import BinaryIO

from vmstate.errors import MalformedError

__all__ = ["open_stream", "seekable", "COMPRESSED_SUFFIXES"]

_XZ_MAGIC = b"\xfd7zXZ\x00"
_GZIP_MAGIC = b"\x1f\x8b"
_SPOOL_IN_MEMORY = 16 << 20
#: file name endings of compressed streams
COMPRESSED_SUFFIXES = (".xz", ".gz")


def open_stream(path: str | Path) -> BinaryIO:
    """Open ``path`` for reading, decompressing xz or gzip transparently."""
    raw = open(path, "rb")
    magic = raw.read(6)
    raw.seek(0)
    decompressed: BinaryIO
    if magic.startswith(_XZ_MAGIC):
        decompressed = lzma.LZMAFile(raw)  # type: ignore[assignment]
    elif magic.startswith(_GZIP_MAGIC):
        decompressed = gzip.GzipFile(fileobj=raw)  # type: ignore[assignment]
    else:
        return raw
    spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY)
    try:
        with decompressed:
            shutil.copyfileobj(decompressed, spool, 1 << 20)
    except (lzma.LZMAError, zlib.error, OSError, EOFError) as error:
        spool.close()
        kind = "xz" if magic.startswith(_XZ_MAGIC) else "gzip"
        # offset: how far into the compressed file the decompressor had read
        offset = raw.tell() if not raw.closed else None
        raise MalformedError(f"{path}: cannot decompress ({kind}): {error}", offset=offset, section=kind) from None
    finally:
        raw.close()
    spool.seek(0)
    return spool  # type: ignore[return-value]


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
