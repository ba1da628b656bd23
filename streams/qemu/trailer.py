"""Find the EOF byte and the vmdesc JSON trailer from the end of a file.

QEMU writes ``00`` (EOF), then optionally ``06`` + be32 length + JSON, and the
file ends there.  JSON holds no NUL byte, so the last NUL of the file is the
EOF byte when a trailer is present; otherwise the file's last byte is it.
Reading from the end needs a seekable file; the window grows only as far as
``limits.max_vmdesc``.
"""

from __future__ import annotations

import os
from typing import BinaryIO

import attrs

from vmstate.limits import Limits

__all__ = ["Trailer", "locate_trailer"]

_FIRST_WINDOW = 1 << 20


@attrs.frozen
class Trailer:
    """Where the device state ends, and the vmdesc bytes if there are any."""

    eof_offset: int
    vmdesc: bytes | None


def locate_trailer(file: BinaryIO, limits: Limits) -> Trailer | None:
    """Locate EOF and vmdesc in a seekable file; None if the end is not a valid one."""
    size = file.seek(0, os.SEEK_END)
    try:
        window = _FIRST_WINDOW
        while True:
            start = max(0, size - window)
            file.seek(start)
            tail = file.read(size - start)
            nul = tail.rfind(b"\x00")
            if nul >= 0:
                # The be32 length after 06 may hold NULs itself, so the EOF
                # byte is the last NUL or up to five bytes before it.
                for eof in range(nul, max(nul - 6, -1), -1):
                    found = _check(start + eof, tail[eof:], size)
                    if found is not None:
                        return found
                return None
            if start == 0 or window > limits.max_vmdesc + 6:
                return None
            window *= 4
    finally:
        file.seek(0)


def _check(eof_offset: int, rest: bytes, size: int) -> Trailer | None:
    if len(rest) == 1:
        return Trailer(eof_offset, None)
    if len(rest) >= 6 and rest[1] == 0x06 and int.from_bytes(rest[2:6], "big") == size - eof_offset - 6:
        return Trailer(eof_offset, rest[6:])
    return None
