"""Names for the files that are not a stream but are often mistaken for one, by their first bytes."""

from __future__ import annotations

__all__ = ["container_name"]

_KNOWN = (
    (b"LibvirtQemudPart", "an unfinished libvirt save image (virsh save did not complete)"),
    (b"QFI\xfb", "a qcow2 disk image: name one of its internal snapshots as DISK@TAG"),
    (b"\x04\x22\x4d\x18", "an lz4 file: unpack it first (lz4 -d)"),
    (b"\x89LZO\x00\r\n\x1a\n", "an lzop file: unpack it first (lzop -d)"),
    (b"PK\x03\x04", "a zip archive: unpack it first"),
)


def container_name(head: bytes) -> str | None:
    """What ``head`` (a file's first bytes) says the file is, when it is a known container or compressor."""
    return next((name for magic, name in _KNOWN if head.startswith(magic)), None)
