"""The snapshot file's fixed frame: preamble, items, tail, SHA-256.

::

    offset 0   magic  89 'V' 'M' 'S' 0D 0A 1A 0A     (8 bytes)
           8   format version, be16
          10   codec: 'M' msgpack, 'C' CBOR, 'J' JSON Lines
          11   flags, 0
          12   items (content_length bytes)
    size - 56  tail magic 89 'V' 'M' 'S' 'E' 'N' 'D' 0A
    size - 48  offset of the index item, be64
    size - 40  content_length, be64
    size - 32  SHA-256 of bytes 0 .. size - 32

The magic is PNG's trick: the high-bit byte catches 7-bit transfers, CR LF
catches line-ending conversion either way, 1A stops DOS ``type``.  The
tail is written last, so a file cut short has none; the checksum covers
every byte before it, so a flipped byte anywhere is caught.
``verify`` checks all of that in one bounded-memory pass before a single
item is decoded.
"""

from __future__ import annotations

import hashlib
import os
import struct
from typing import BinaryIO

import attrs

from vmstate.errors import (
    MalformedError,
    TruncatedError,
    UnsupportedError,
    VersionError,
)

__all__ = [
    "CODEC_IDS",
    "FORMAT_VERSION",
    "MAGIC",
    "PREAMBLE_SIZE",
    "TAIL_MAGIC",
    "TAIL_SIZE",
    "ChecksumError",
    "Container",
    "ContainerWriter",
    "verify",
]

MAGIC = b"\x89VMS\r\n\x1a\n"
TAIL_MAGIC = b"\x89VMSEND\n"
#: the version of this file format; readers refuse any other
FORMAT_VERSION = 1
_PREAMBLE = struct.Struct(">8sHBB")
_TAIL_HEAD = struct.Struct(">8sQQ")
_DIGEST_SIZE = 32
PREAMBLE_SIZE = _PREAMBLE.size
TAIL_SIZE = _TAIL_HEAD.size + _DIGEST_SIZE
#: codec name -> the byte that names it in the preamble
CODEC_IDS = {"msgpack": ord("M"), "cbor": ord("C"), "json": ord("J")}
_CODEC_NAMES = {value: name for name, value in CODEC_IDS.items()}
_HASH_CHUNK = 1 << 20
#: what text-mode transfers make of the magic
_DAMAGED = {
    b"\x89VMS\n\x1a\n": "CR LF became LF (a text-mode transfer)",
    b"\x89VMS\r\r\n\x1a\r\n": "LF became CR LF (a text-mode transfer)",
    b"\x09VMS\r\n\x1a\n": "the high bit was stripped (a 7-bit transfer)",
}


class ChecksumError(MalformedError):
    """The SHA-256 in a snapshot's tail does not match its bytes."""


@attrs.frozen
class Container:
    """What ``verify`` found: a sound frame around ``content_length`` bytes of items."""

    format_version: int
    codec: str
    size: int
    content_start: int
    content_length: int
    index_offset: int

    @property
    def content_end(self) -> int:
        return self.content_start + self.content_length


def _preamble(head: bytes, size: int) -> tuple[int, str]:
    if len(head) < len(MAGIC):
        raise TruncatedError(f"a file of {size} bytes is too short to be a snapshot", offset=size)
    if head[: len(MAGIC)] != MAGIC:
        for damaged, why in _DAMAGED.items():
            if head.startswith(damaged):
                raise MalformedError(f"snapshot magic is damaged: {why}", offset=0)
        raise MalformedError(f"not a snapshot: magic {head[:8].hex()}, expected {MAGIC.hex()}", offset=0)
    if len(head) < PREAMBLE_SIZE:
        raise TruncatedError(f"a file of {size} bytes ends inside the snapshot preamble", offset=size)
    _, version, codec_id, flags = _PREAMBLE.unpack(head[:PREAMBLE_SIZE])
    if version != FORMAT_VERSION:
        raise VersionError(
            f"snapshot format version {version}; this reader reads version {FORMAT_VERSION}", offset=8, version=version
        )
    if codec_id not in _CODEC_NAMES:
        raise UnsupportedError(f"unknown snapshot codec byte {codec_id:#04x}", offset=10)
    if flags:
        raise UnsupportedError(f"unknown snapshot flags {flags:#04x}", offset=11)
    return version, _CODEC_NAMES[codec_id]


def verify(file: BinaryIO) -> Container:
    """Check magic, format version, codec, tail and checksum of a seekable snapshot file.

    Reads the file once in 1 MiB chunks; leaves the position at the first item.
    """
    size = file.seek(0, os.SEEK_END)
    file.seek(0)
    version, codec = _preamble(file.read(PREAMBLE_SIZE), size)
    if size < PREAMBLE_SIZE + TAIL_SIZE:
        raise TruncatedError(f"a file of {size} bytes ends before the snapshot tail", offset=size)
    tail_at = size - TAIL_SIZE
    file.seek(tail_at)
    tail = file.read(TAIL_SIZE)
    magic, index_offset, content_length = _TAIL_HEAD.unpack(tail[: _TAIL_HEAD.size])
    if magic != TAIL_MAGIC:
        raise TruncatedError(f"no snapshot tail at the end of {size} bytes: the file is cut short or its end is damaged", offset=size)
    expected_size = PREAMBLE_SIZE + content_length + TAIL_SIZE
    if expected_size != size:
        if size < expected_size:
            raise TruncatedError(f"the tail announces a {expected_size}-byte file; it has {size} bytes", offset=size)
        raise MalformedError(f"the tail announces {content_length} bytes of items: a {expected_size}-byte file, not {size}", offset=tail_at + 16)
    if not PREAMBLE_SIZE <= index_offset < tail_at:
        raise MalformedError(f"index offset {index_offset:#x} lies outside the items", offset=tail_at + 8)
    digest = _sha256(file, size - _DIGEST_SIZE)
    if digest != tail[_TAIL_HEAD.size :]:
        raise ChecksumError(
            f"SHA-256 over bytes 0..{size - _DIGEST_SIZE:#x} does not match the tail: the file is corrupted",
            offset=size - _DIGEST_SIZE,
        )
    file.seek(PREAMBLE_SIZE)
    return Container(version, codec, size, PREAMBLE_SIZE, content_length, index_offset)


def _sha256(file: BinaryIO, length: int) -> bytes:
    file.seek(0)
    digest = hashlib.sha256()
    buffer = bytearray(_HASH_CHUNK)
    view = memoryview(buffer)
    remaining = length
    while remaining:
        n = file.readinto(view[: min(remaining, _HASH_CHUNK)])  # type: ignore[attr-defined]
        if not n:
            raise TruncatedError("the file shrank while it was being verified", offset=length - remaining)
        digest.update(view[:n])
        remaining -= n
    return digest.digest()


class ContainerWriter:
    """Write the frame around encoded items to a sink, hashing as it goes (one pass, no seeks)."""

    def __init__(self, sink: BinaryIO, codec: str) -> None:
        self._sink = sink
        self._hash = hashlib.sha256()
        self.offset = 0
        self._write(_PREAMBLE.pack(MAGIC, FORMAT_VERSION, CODEC_IDS[codec], 0))

    def _write(self, data: bytes) -> None:
        self._sink.write(data)
        self._hash.update(data)
        self.offset += len(data)

    def write_item(self, data: bytes) -> None:
        """Append one encoded item."""
        self._write(data)

    def finish(self, index_offset: int) -> None:
        """Write the tail: where the index item starts, the items' length, the checksum."""
        self._write(_TAIL_HEAD.pack(TAIL_MAGIC, index_offset, self.offset - PREAMBLE_SIZE))
        digest = self._hash.digest()
        self._sink.write(digest)
        self.offset += len(digest)
