"""libvirt save images (``virsh save``, ``managedsave``): the header, the domain XML, then the QEMU stream.

The layout is libvirt's (src/qemu/qemu_saveimage.h): a 92-byte header in
the host's byte order (a byte-swapped version 2 is the other order) of
``magic`` (``LibvirtQemudSave``; ``LibvirtQemudPart`` for a save that never
finished), ``version``, ``data_len``, ``was_running``, ``format``,
``cookieOffset`` and 14 unused words; then ``data_len`` bytes holding the
domain XML (NUL-terminated), the cookie XML at ``cookieOffset`` if there is
one, and padding; then the QEMU migration stream, compressed as ``format``
says (0 raw, 1 gzip, 2 bzip2, 3 xz, 4 lzop, 5 zstd, 6 sparse: a mapped-ram
file).

The file is untrusted: ``data_len`` is bounded before anything is read,
and the XML is decoded with replacement, never parsed beyond the few names
``describe`` shows.
"""

from __future__ import annotations

import io
import os
import re
import struct
from typing import BinaryIO

import attrs

from vmstate.errors import MalformedError, TruncatedError, UnsupportedError

from ._views import ReadOnlyView

__all__ = ["FORMATS", "HEADER_SIZE", "SaveImageHeader", "is_save_image", "open_save_image", "read_header"]

MAGIC = b"LibvirtQemudSave"
PARTIAL = b"LibvirtQemudPart"
VERSION = 2
HEADER_SIZE = 16 + 4 * 5 + 4 * 14
#: libvirt's virQEMUSaveFormat numbers
FORMATS = {0: "raw", 1: "gzip", 2: "bzip2", 3: "xz", 4: "lzop", 5: "zstd", 6: "sparse"}
#: the most XML (domain + cookie + padding) a save image may claim
MAX_DATA_LEN = 64 << 20


@attrs.frozen
class SaveImageHeader:
    """What a save image says before its stream."""

    partial: bool
    byte_order: str  # "little" or "big"
    version: int
    data_len: int
    was_running: bool
    format: int
    cookie_offset: int
    xml: str
    cookie: str | None

    @property
    def format_name(self) -> str:
        return FORMATS.get(self.format, f"unknown ({self.format})")

    @property
    def stream_offset(self) -> int:
        """Where the QEMU stream starts in the file."""
        return HEADER_SIZE + self.data_len

    @property
    def domain_name(self) -> str | None:
        match = re.search(r"<name>([^<]{1,256})</name>", self.xml)
        return match.group(1) if match else None

    @property
    def machine(self) -> str | None:
        match = re.search(r"<type[^>]*\smachine=['\"]([^'\"]{1,128})['\"]", self.xml)
        return match.group(1) if match else None


def is_save_image(head: bytes) -> bool:
    return head.startswith(MAGIC) or head.startswith(PARTIAL)


def read_header(raw: BinaryIO) -> SaveImageHeader:
    """The header and XML of the save image ``raw`` (positioned anywhere; left after the XML)."""
    raw.seek(0)
    head = raw.read(HEADER_SIZE)
    if len(head) < HEADER_SIZE:
        raise TruncatedError(f"a libvirt save image header is {HEADER_SIZE} bytes; the file has {len(head)}",
                             offset=len(head), section="libvirt header")
    if not is_save_image(head):
        raise MalformedError("not a libvirt save image", offset=0, section="libvirt header")
    order = "<"
    version = struct.unpack_from("<I", head, 16)[0]
    if version != VERSION and struct.unpack_from(">I", head, 16)[0] == VERSION:
        order = ">"  # written on a host of the other byte order
    version, data_len, was_running, image_format, cookie_offset = struct.unpack_from(f"{order}5I", head, 16)
    if version != VERSION:
        raise UnsupportedError(f"libvirt save image version {version} (version {VERSION} is read)", offset=16,
                               section="libvirt header")
    if data_len > MAX_DATA_LEN:
        raise MalformedError(f"data_len {data_len} is over {MAX_DATA_LEN} bytes", offset=20, section="libvirt header")
    data = raw.read(data_len)
    if len(data) < data_len:
        raise TruncatedError(f"data_len says {data_len} bytes of XML; the file has {len(data)}",
                             offset=HEADER_SIZE + len(data), section="libvirt XML")
    xml_end = data.find(b"\0")
    if xml_end < 0:
        raise MalformedError("the domain XML is not NUL-terminated within data_len", offset=HEADER_SIZE,
                             section="libvirt XML")
    if cookie_offset and not xml_end < cookie_offset < data_len:
        raise MalformedError(f"cookieOffset {cookie_offset} is not inside the data after the domain XML", offset=32,
                             section="libvirt header")
    cookie = None
    if cookie_offset:
        end = data.find(b"\0", cookie_offset)
        cookie = data[cookie_offset:end if end >= 0 else data_len].decode("utf-8", "replace")
    return SaveImageHeader(head.startswith(PARTIAL), "little" if order == "<" else "big", version, data_len,
                           bool(was_running), image_format, cookie_offset, data[:xml_end].decode("utf-8", "replace"),
                           cookie)


class _Window(ReadOnlyView):
    """The bytes of ``owner`` from ``start`` to its end, as a seekable file of their own."""

    def __init__(self, owner: BinaryIO, start: int) -> None:
        super().__init__(max(0, owner.seek(0, io.SEEK_END) - start))
        self._owner, self._start = owner, start

    def read_at(self, offset: int, length: int) -> bytes:
        self._owner.seek(self._start + offset)
        return self._owner.read(length)

    def close(self) -> None:
        if not self.closed:
            self._owner.close()
        super().close()


def open_save_image(path: str | os.PathLike[str]) -> tuple[SaveImageHeader, BinaryIO]:
    """The header and the still compressed (if ``format`` says so) QEMU stream of a save image."""
    raw = open(path, "rb")
    try:
        header = read_header(raw)
        if header.partial:
            raise MalformedError("an unfinished libvirt save image (LibvirtQemudPart: virsh save did not complete)",
                                 offset=0, section="libvirt header")
        if header.format_name in ("lzop",) or header.format not in FORMATS:
            raise UnsupportedError(f"a libvirt save image in format {header.format_name} (raw, gzip, bzip2, xz, zstd "
                                   "and sparse are read)", offset=28, section="libvirt header")
    except BaseException:
        raw.close()
        raise
    return header, io.BufferedReader(_Window(raw, header.stream_offset), buffer_size=1 << 16)  # type: ignore[return-value]
