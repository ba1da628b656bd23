"""Find the EOF byte and the vmdesc JSON trailer from the end of a file.

QEMU writes ``00`` (EOF), then optionally ``06`` + be32 length + JSON, and the
file ends there (migration/savevm.c, ``qemu_savevm_state_complete_precopy``).
JSON holds no NUL byte, so the last NUL of the file is the EOF byte when a
trailer is present; otherwise the file's last byte is it.  Reading from the
end needs a seekable file; it is read backwards a chunk at a time, no further
than ``limits.max_vmdesc`` bytes from the end, and only the vmdesc itself is
kept.
"""

from __future__ import annotations

import os
from typing import BinaryIO

import attrs

from vmstate.limits import Limits

__all__ = ["Trailer", "locate_trailer"]

_CHUNK = 1 << 20
#: the vmdesc marker byte and its be32 length, between the EOF byte and the JSON
_HEAD = 1 + 4


@attrs.frozen
class Trailer:
    """Where the device state ends, and the vmdesc bytes if there are any."""

    eof_offset: int
    vmdesc: bytes | None


def locate_trailer(file: BinaryIO, limits: Limits) -> Trailer | None:
    """Locate EOF and vmdesc in a seekable file; None if the end is not a valid one."""
    size = file.seek(0, os.SEEK_END)
    try:
        nul = last_nul(file, size, limits.max_vmdesc + _HEAD + 1)
        if nul is None:
            return None
        # The be32 length after 06 may hold NULs itself, so the EOF byte is
        # the last NUL or up to five bytes before it.
        first = max(0, nul - _HEAD)
        file.seek(first)
        near = file.read(nul + 1 + _HEAD - first)
        for eof in range(nul, first - 1, -1):
            if eof == size - 1:
                return Trailer(eof, None)
            head = near[eof - first : eof - first + 1 + _HEAD]
            length = size - eof - 1 - _HEAD
            if len(head) == 1 + _HEAD and head[1] == 0x06 and int.from_bytes(head[2:], "big") == length:
                if length > limits.max_vmdesc:
                    return None  # the reader reaches it and names the limit
                file.seek(eof + 1 + _HEAD)
                return Trailer(eof, file.read(length))
        return None
    finally:
        file.seek(0)


def last_nul(file: BinaryIO, size: int, distance: int) -> int | None:
    """Offset of the last NUL byte among the file's last ``distance`` bytes, reading a chunk at a time."""
    end = size
    limit = max(0, size - distance)
    while end > limit:
        start = max(limit, end - _CHUNK)
        file.seek(start)
        found = file.read(end - start).rfind(b"\x00")
        if found >= 0:
            return start + found
        end = start
    return None
