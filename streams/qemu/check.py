"""Decode a stream fully, re-encode it and compare, in bounded memory.

The original bytes are read through a second handle in step with the
re-encoded records, so nothing of the stream is held beyond one record.
A run of RAM pages is the exception: its encoding is its wire bytes as read
(``RamCodec.encode``), the source's own bytes at that place, so comparing it
with the same bytes read again through the second handle proves nothing; the
second handle seeks over it instead (one pass over the pages, not three)
where its length is known, a regular file's or bytes in memory (a second
handle that ends early is still compared, so the difference is found where
it is); a decompressed stream is read as before.
"""

from __future__ import annotations

import io
import os
import stat
from typing import BinaryIO

import attrs

from streams import records
from streams.records import StreamRecord
from vmstate.compare_bytes import first_difference
from vmstate.limits import DEFAULT_LIMITS, Limits
from vmstate.lookup import TYPED_SOURCE, DescriptionLookup, LookupFunction

from .mapped_ram import zero_difference
from .naming import naming
from .reader import StreamReader
from .writer import encode_record

__all__ = ["SectionReport", "CheckReport", "check_stream", "first_difference"]


def _compare(data: bytes, original: BinaryIO, compare: bool) -> int | None:
    """Read ``len(data)`` bytes of ``original`` a chunk at a time (a long raw body is not copied whole).

    Returns where they first differ from ``data``, if ``compare``.
    """
    found: int | None = None
    for start in range(0, len(data) or 1, _COMPARE_CHUNK):
        part = data if len(data) <= _COMPARE_CHUNK else data[start : start + _COMPARE_CHUNK]
        expected = original.read(len(part))
        if compare and found is None:
            at = first_difference(part, expected)
            found = None if at is None else start + at
    return found


_COMPARE_CHUNK = 1 << 20


def _length(original: BinaryIO) -> int:
    """The bytes of a second handle from where it is: known for a regular file and in-memory bytes, else -1."""
    if isinstance(original, io.BytesIO):
        return original.getbuffer().nbytes - original.tell()
    if not isinstance(original, (io.BufferedReader, io.FileIO)):  # a decompressed stream is read, never sought over
        return -1
    try:
        status = os.fstat(original.fileno())
    except OSError:  # a view that is no file of its own (a qcow2 snapshot's state, a libvirt image's stream)
        return -1
    return status.st_size - original.tell() if stat.S_ISREG(status.st_mode) else -1


@attrs.define
class SectionReport:
    """Bytes of one section's body decoded into named fields or kept raw."""

    section_id: int
    idstr: str
    kind: str
    instance_id: int | None = None
    version: int | None = None
    source: str = "records"
    named_bytes: int = 0
    #: of the named bytes, those in fields whose inner layout is unknown (see ``naming``)
    opaque_bytes: int = 0
    raw_bytes: int = 0
    #: why the preferred description was set aside, if it was
    fallback: str | None = None
    #: why a section that should decode field by field did not (a failure to name it)
    unnamed: str | None = None
    #: why the body was kept raw, if it was
    raw_reason: str | None = None


@attrs.define
class CheckReport:
    """The outcome of ``check_stream``."""

    size: int = 0
    identical: bool = True
    first_difference: int | None = None
    sections: list[SectionReport] = attrs.Factory(list)
    ram_pages: int = 0
    ram_zero_pages: int = 0

    @property
    def raw_bytes(self) -> int:
        return sum(s.raw_bytes for s in self.sections)

    @property
    def opaque_bytes(self) -> int:
        return sum(s.opaque_bytes for s in self.sections)

    @property
    def unnamed(self) -> list[SectionReport]:
        """Sections a description of ours should have named but did not."""
        return [s for s in self.sections if s.unnamed is not None]


def check_stream(
    source: BinaryIO,
    original: BinaryIO,
    *,
    descriptions: DescriptionLookup | LookupFunction | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> CheckReport:
    """Decode ``source``, re-encode each record and compare with ``original``.

    ``original`` is a second handle on the same bytes, positioned at 0.
    """
    report = CheckReport()
    idstrs: dict[int, str] = {}
    current: SectionReport | None = None
    reader = StreamReader(source, descriptions=descriptions, limits=limits, batch_pages=True)
    # how far the second handle may be sought over page runs: to its end (a shorter one is compared, so found)
    skip_to = _length(original)
    for record in reader:
        if isinstance(record, records.MappedRamFill) and record.data is None:  # a hole: never made of bytes here
            at = zero_difference(original, record.length) if report.identical else None
            if at is not None:
                report.identical = False
                report.first_difference = report.size + at
            report.size += record.length
            current_named(current, record.length)
            continue
        if (isinstance(record, records.RamPageRun) and reader.offset - len(record.raw) == report.size
                and report.size + len(record.raw) <= skip_to):
            original.seek(len(record.raw), io.SEEK_CUR)  # the source's own bytes here, as encode_record returns them
            data: bytes | memoryview = record.raw
        else:
            data = encode_record(record)
            at = _compare(data, original, report.identical)
            if at is not None:
                report.identical = False
                report.first_difference = report.size + at
        report.size += len(data)
        match record:
            case records.SectionHeader(section_id=section_id, idstr=idstr):
                if idstr is not None:
                    idstrs[section_id] = idstr
                current = SectionReport(
                    section_id, idstrs.get(section_id, "?"), record.kind.name, record.instance_id, record.version
                )
                report.sections.append(current)
            case records.Configuration():
                configuration = SectionReport(-1, "configuration", "CONFIGURATION", source=TYPED_SOURCE, named_bytes=len(data) - 1)
                report.sections.append(configuration)
            case _ if current is not None:
                _count(record, len(data), current, report)
    if original.read(1):
        report.identical = False
        report.first_difference = report.first_difference if report.first_difference is not None else report.size
    return report


def current_named(current: SectionReport | None, size: int) -> None:
    """Count ``size`` bytes of RAM records towards the section being read."""
    if current is not None:
        current.named_bytes += size


def _count(record: StreamRecord, size: int, current: SectionReport, report: CheckReport) -> None:
    """Count a record of the section ``current`` (a body, or RAM and HTAB records) towards the reports."""
    match record:
        case records.DeviceState():
            current.source = record.source
            current.fallback = record.fallback
            opaque, current.unnamed = naming(record)
            current.named_bytes += size
            current.opaque_bytes += opaque
        case records.RawBody():
            current.source = "raw"
            current.unnamed = naming(record)[1]
            current.raw_bytes += size
            current.raw_reason = record.reason
        case records.RamPageRun():
            current.named_bytes += size
            report.ram_pages += record.count
        case records.RamPage():
            current.named_bytes += size
            report.ram_pages += 1
        case records.RamZero():
            current.named_bytes += size
            report.ram_zero_pages += 1
        case (records.RamBlockList() | records.RamEos() | records.RamFlush() | records.HtabHeader() | records.HtabChunk()
              | records.HtabEnd() | records.MappedRamBlock() | records.MappedRamBitmap() | records.MappedRamFill()):
            current.named_bytes += size
