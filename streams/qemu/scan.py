"""Find where a section body ends when nothing describes it.

A QEMU section carries no length.  When neither a state class of ours nor
the stream's vmdesc trailer describes a section, its end is found by looking
ahead for the next thing that can only be framing:

* with section footers (machine types >= 2.4): ``7E`` + this section's id,
  followed by a plausible next section start;
* without (2.2 layout): the first plausible next section start, which is
  a START/FULL header with an unused section id, a printable idstr and a
  small version; a PART/END of a section that was started; or the EOF byte at
  the offset the trailer locator found.

A false match cannot lose data — the bytes are kept either way and the
writer puts them back in order — but it would split a section wrongly; the
tests check the scan against vmdesc-derived boundaries on real streams.
"""

from __future__ import annotations

from typing import Callable

import attrs

from streams.records import SectionType
from vmstate.errors import LimitExceededError, UnknownSectionError
from vmstate.limits import Limits
from vmstate.wire import ByteReader

__all__ = ["ScanContext", "find_body_end", "is_boundary"]

_FIRST_WINDOW = 1 << 16
#: the scan's window grows from 64 KiB to this, and stays there
_MAX_WINDOW = 1 << 22
_MAX_HEADER = 1 + 4 + 1 + 255 + 4 + 4
_MAX_PLAUSIBLE_VERSION = 0xFFFF
#: section versions above that bound QEMU really writes: eeprom93xx's EEPROM_VERSION (hw/nvram/eeprom93xx.c,
#: a date: 20061112 + 1), the eeprom of dc390 and of the other 93xx users
_KNOWN_LARGE_VERSIONS = frozenset({20061113})


@attrs.define
class ScanContext:
    """What the reader knows that tells real framing from look-alike data."""

    used_ids: set[int]
    started_ids: set[int]
    footers: bool
    eof_offset: int | None
    #: section versions the stream's vmdesc names: plausible whatever their size
    versions: frozenset[int] = frozenset()


def _plausible_header(buf: bytes, p: int, ctx: ScanContext) -> bool:
    if len(buf) < p + 6:
        return False
    section_id = int.from_bytes(buf[p + 1 : p + 5], "big")
    if section_id in ctx.used_ids:
        return False
    length = buf[p + 5]
    end = p + 6 + length
    if length == 0 or len(buf) < end + 8:
        return False
    if not all(0x20 <= c < 0x7F for c in buf[p + 6 : end]):
        return False
    version = int.from_bytes(buf[end + 4 : end + 8], "big")
    return version <= _MAX_PLAUSIBLE_VERSION or version in _KNOWN_LARGE_VERSIONS or version in ctx.versions


def _plausible_start(buf: bytes, p: int, base: int, at_end: bool, ctx: ScanContext) -> bool:
    kind = buf[p]
    if kind == SectionType.EOF:
        if ctx.eof_offset is not None:
            return base + p == ctx.eof_offset
        # No valid end was located: EOF is the last byte or precedes a vmdesc marker.
        return (at_end and p == len(buf) - 1) or buf[p + 1 : p + 2] == bytes((SectionType.VMDESCRIPTION,))
    if kind in (SectionType.START, SectionType.FULL):
        return _plausible_header(buf, p, ctx)
    if kind in (SectionType.PART, SectionType.END):
        return len(buf) >= p + 5 and int.from_bytes(buf[p + 1 : p + 5], "big") in ctx.started_ids
    return False


def is_boundary(reader: ByteReader, section_id: int, ctx: ScanContext) -> bool:
    """True if the body that led to the reader's offset ends exactly here."""
    footer = bytes((SectionType.FOOTER,)) + section_id.to_bytes(4, "big")
    skip = len(footer) if ctx.footers else 0
    buf = reader.peek(skip + _MAX_HEADER)
    if ctx.footers and not buf.startswith(footer):
        return False
    at_end = len(buf) < skip + _MAX_HEADER
    return len(buf) > skip and _plausible_start(buf, skip, reader.offset, at_end, ctx)


def find_body_end(reader: ByteReader, section_id: int, ctx: ScanContext, limits: Limits) -> int:
    """Return the length of the body starting at the reader's offset (nothing is consumed).

    The body is scanned one window at a time (``ByteReader.peek_at``): memory
    stays at a window whatever the body's length, and the candidates are
    found by ``bytes.find`` and byte-class masks (``_candidates``), not byte by byte.
    """
    base = reader.offset
    if ctx.eof_offset is not None and base > ctx.eof_offset:
        raise UnknownSectionError("section starts after the end of the device state", offset=base)
    footer = bytes((SectionType.FOOTER,)) + section_id.to_bytes(4, "big")
    # room for a boundary (footer and the longest header) straddling a window's end
    overlap = _MAX_HEADER + len(footer)
    window = _FIRST_WINDOW
    ahead = 0
    while True:
        buf = reader.peek_at(ahead, window + overlap)
        at_end = len(buf) < window + overlap
        stop = len(buf) if at_end else window
        for p in _candidates(buf, stop, footer if ctx.footers else None, base + ahead, at_end, ctx):
            nxt = p + len(footer) if ctx.footers else p
            if nxt < len(buf) and _plausible_start(buf, nxt, base + ahead, at_end, ctx):
                if ahead + p > limits.max_section_body:
                    raise LimitExceededError(
                        f"section body of {ahead + p} bytes exceeds limits.max_section_body = {limits.max_section_body}",
                        offset=base,
                    )
                return ahead + p
        if at_end:
            raise UnknownSectionError(
                "no description for this section and no section boundary found after it", offset=base
            )
        ahead += stop
        if ahead > limits.max_section_body:
            raise LimitExceededError(
                f"no section boundary within limits.max_section_body = {limits.max_section_body} bytes",
                offset=base,
            )
        window = min(window * 4, _MAX_WINDOW)


def _table(accept: Callable[[int], bool]) -> bytes:
    return bytes(1 if accept(b) else 0 for b in range(256))


_START_FULL = _table(lambda b: b in (SectionType.START, SectionType.FULL))
_PRINTABLE = _table(lambda b: 0x20 <= b < 0x7F)
_NONZERO = _table(lambda b: b != 0)
_PART_END = _table(lambda b: b in (SectionType.PART, SectionType.END))
#: started sections up to which PART/END candidates are found by one ``bytes.find`` per id and type
_FIND_PER_ID = 8


def _header_candidates(buf: bytes, stop: int) -> list[int]:
    """Offsets of START/FULL bytes followed by a non-zero idstr length and a printable idstr byte.

    One byte-class mask per condition, shifted into place and ANDed as big
    integers: C speed whatever the body holds.
    """
    starts = buf.translate(_START_FULL)
    if starts.find(1, 0, stop) < 0:
        return []
    n = len(buf)
    mask = (
        int.from_bytes(starts, "big")
        & int.from_bytes(buf.translate(_NONZERO), "big") << 40  # the idstr length, 5 bytes on
        & int.from_bytes(buf.translate(_PRINTABLE), "big") << 48  # its first byte, 6 bytes on
    ).to_bytes(n, "big")
    return _ones(mask, stop)


def _ones(mask: bytes, stop: int) -> list[int]:
    found = []
    p = mask.find(1, 0, stop)
    while p >= 0:
        found.append(p)
        p = mask.find(1, p + 1, stop)
    return found


def _finds(buf: bytes, needle: bytes, stop: int) -> list[int]:
    found = []
    p = buf.find(needle, 0, stop + len(needle) - 1)
    while 0 <= p < stop:
        found.append(p)
        p = buf.find(needle, p + 1, stop + len(needle) - 1)
    return found


def _candidates(buf: bytes, stop: int, footer: bytes | None, base: int, at_end: bool, ctx: ScanContext) -> list[int]:
    """Positions in ``buf[:stop]`` where a boundary may begin, in order (``base``: offset of ``buf[0]``).

    Without footers (2.2 layout): START/FULL headers (``_header_candidates``),
    PART/END of a started section, and EOF where the trailer locator put it
    (else followed by the vmdesc marker, or the input's last byte).
    """
    if footer is not None:
        return _finds(buf, footer, stop)
    found = _header_candidates(buf, stop)
    if len(ctx.started_ids) <= _FIND_PER_ID:
        for section_id in ctx.started_ids:
            for kind in (SectionType.PART, SectionType.END):
                found += _finds(buf, bytes((kind,)) + section_id.to_bytes(4, "big"), stop)
    else:
        found += _ones(buf.translate(_PART_END), stop)
    if ctx.eof_offset is not None:
        if 0 <= ctx.eof_offset - base < stop:
            found.append(ctx.eof_offset - base)
    else:
        found += _finds(buf, bytes((SectionType.EOF, SectionType.VMDESCRIPTION)), stop)
        if at_end and buf[-1:] == bytes((SectionType.EOF,)):
            found.append(len(buf) - 1)
    return sorted(set(found))
