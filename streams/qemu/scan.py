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

import re
from typing import Iterator

import attrs

from vmstate.errors import LimitExceededError, UnknownSectionError
from vmstate.limits import Limits
from vmstate.wire import ByteReader

from .records import SectionType

__all__ = ["ScanContext", "find_body_end", "is_boundary"]

_FIRST_WINDOW = 1 << 16
_MAX_HEADER = 1 + 4 + 1 + 255 + 4 + 4
_MAX_PLAUSIBLE_VERSION = 0xFFFF


@attrs.define
class ScanContext:
    """What the reader knows that tells real framing from look-alike data."""

    used_ids: set[int]
    started_ids: set[int]
    footers: bool
    eof_offset: int | None


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
    return int.from_bytes(buf[end + 4 : end + 8], "big") <= _MAX_PLAUSIBLE_VERSION


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
    """Return the length of the body starting at the reader's offset (nothing is consumed)."""
    base = reader.offset
    if ctx.eof_offset is not None and base > ctx.eof_offset:
        raise UnknownSectionError("section starts after the end of the device state", offset=base)
    footer = bytes((SectionType.FOOTER,)) + section_id.to_bytes(4, "big")
    window = _FIRST_WINDOW
    scanned = 0
    while True:
        buf = reader.peek(window)
        at_end = len(buf) < window
        # Leave room for a header straddling the window's end unless at the end.
        stop = len(buf) if at_end else len(buf) - _MAX_HEADER - len(footer)
        for p in _candidates(buf, scanned, stop, footer if ctx.footers else None):
            nxt = p + len(footer) if ctx.footers else p
            if nxt < len(buf) and _plausible_start(buf, nxt, base, at_end, ctx):
                if p > limits.max_section_body:
                    raise LimitExceededError(
                        f"section body of {p} bytes exceeds limits.max_section_body = {limits.max_section_body}",
                        offset=base,
                    )
                return p
        if at_end:
            raise UnknownSectionError(
                "no description for this section and no section boundary found after it", offset=base
            )
        if stop > limits.max_section_body:
            raise LimitExceededError(
                f"no section boundary within limits.max_section_body = {limits.max_section_body} bytes",
                offset=base,
            )
        scanned = max(stop, 0)
        window = min(window * 4, limits.max_section_body + _MAX_HEADER + len(footer) + 1)


_SECTION_BYTES = re.compile(rb"[\x00-\x04]")


def _candidates(buf: bytes, start: int, stop: int, footer: bytes | None) -> Iterator[int]:
    """Positions in ``buf[start:stop]`` where a boundary may begin, in order."""
    if footer is not None:
        p = buf.find(footer, start, stop + len(footer))
        while 0 <= p < stop:
            yield p
            p = buf.find(footer, p + 1, stop + len(footer))
        return
    for match in _SECTION_BYTES.finditer(buf, start, stop):
        yield match.start()
