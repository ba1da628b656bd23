"""Read a QEMU savevm stream incrementally into ``StreamRecord``s.

How a device (FULL) section body is decoded, in order of preference:

1. a state class of ours that describes it (``descriptions`` lookup);
2. the stream's own vmdesc JSON trailer (streams of machine types >= 2.3);
3. nothing describes it: the body is kept as raw bytes and its end is found
   by ``scan.find_body_end`` (footer search, else a verified next-header
   search), so the stream still decodes and re-encodes losslessly.

A description is accepted only if the section ends where it says (the footer,
or a plausible next section start, follows); otherwise the reader goes back
and tries the next way.  The vmdesc trailer and the EOF offset are found
first by reading the end of the file (``trailer.locate_trailer``); a
non-seekable input is spooled to a temporary file first.
"""

from __future__ import annotations

import io
import mmap
import os
import stat
from typing import BinaryIO, Iterator, Sequence

import attrs

from streams.files import seekable
from streams.records import (
    COMMAND_LENGTHS,
    QEMU_FILE_VERSION,
    QEMU_MAGIC,
    Command,
    Configuration,
    DeviceState,
    Eof,
    FileHeader,
    RawBody,
    SectionFooter,
    SectionHeader,
    SectionType,
    StreamRecord,
    TrailingData,
    VmDescription,
)
from vmstate.description import Description
from vmstate.engine import decode
from vmstate.errors import (
    DecodeError,
    LimitExceededError,
    MalformedError,
    TruncatedError,
    UnknownSubsectionError,
    UnsupportedError,
    VersionError,
)
from vmstate.limits import DEFAULT_LIMITS, Limits
from vmstate.lookup import TYPED_SOURCE, VMDESC_SOURCE, DescriptionLookup, LookupFunction, as_lookup
from vmstate.vmdesc import check_name, description_from_vmdesc
from vmstate.wire import ByteReader

from ..magic import container_name
from .configuration import CONFIGURATION, capabilities_of, check_vmdesc_entry, page_size_of
from .htab import decode_htab_body
from .mapped_ram import RandomAccess
from .ram import MappedInput, RamCodec
from .scan import ScanContext, find_body_end, is_boundary
from .trailer import Trailer, locate_trailer

__all__ = ["StreamReader", "DescriptionLookup", "DEFAULT_PAGE_SIZE"]

DEFAULT_PAGE_SIZE = 4096
_RAM_VERSION = 4
#: bytes after a section that tell whether a boundary follows (footer + longest header)
_LOOKAHEAD = 5 + 1 + 4 + 1 + 255 + 4 + 4
#: bytes of trailing data (after EOF and vmdesc) per ``TrailingData`` record
_TRAILING_CHUNK = 1 << 20


class StreamReader:
    """Iterate over the records of one QEMU migration stream."""

    def __init__(
        self,
        source: BinaryIO,
        *,
        descriptions: DescriptionLookup | LookupFunction | None = None,
        limits: Limits = DEFAULT_LIMITS,
        page_size: int | None = None,
        batch_pages: bool = False,
    ) -> None:
        """``batch_pages``: yield runs of consecutive CONTINUE pages as ``RamPageRun`` records."""
        self._file = seekable(source)
        self._batch_pages = batch_pages
        self._descriptions = as_lookup(descriptions)
        self._limits = limits
        self._trailer: Trailer | None = locate_trailer(self._file, limits)
        self.vmdesc: dict | None = None  # type: ignore[type-arg]
        if self._trailer is not None and self._trailer.vmdesc is not None:
            try:
                self.vmdesc = VmDescription(self._trailer.vmdesc).parsed(limits, self._vmdesc_offset)
            except DecodeError as error:
                error.add_context(offset=self._vmdesc_offset, section="vmdesc")
                raise
        self.page_size = page_size or self._vmdesc_page_size() or DEFAULT_PAGE_SIZE
        self._explicit_page_size = page_size is not None or self._vmdesc_page_size() is not None
        self._vmdesc_devices = self._index_vmdesc()
        self._vmdesc_versions = frozenset(
            entry["version"] for entries in self._vmdesc_devices.values() for entry in entries
            if isinstance(entry.get("version"), int) and not isinstance(entry.get("version"), bool))
        self._footers = False

    @property
    def _vmdesc_offset(self) -> int | None:
        """Where the vmdesc JSON starts (after EOF, 06 and the be32 length)."""
        return None if self._trailer is None else self._trailer.eof_offset + 6

    def _vmdesc_page_size(self) -> int | None:
        value = (self.vmdesc or {}).get("page_size")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def _index_vmdesc(self) -> dict[tuple[str, int], list[dict]]:  # type: ignore[type-arg]
        index: dict[tuple[str, int], list[dict]] = {}  # type: ignore[type-arg]
        devices = (self.vmdesc or {}).get("devices", [])
        where = self._vmdesc_offset
        if not isinstance(devices, list):
            raise MalformedError("vmdesc 'devices' is not a list", offset=where, section="vmdesc")
        for i, entry in enumerate(devices):
            # migration/savevm.c vmstate_save: every entry names its section and instance
            if not isinstance(entry, dict):
                raise MalformedError(f"vmdesc devices[{i}] is not an object", offset=where, section="vmdesc")
            name, instance_id = entry.get("name"), entry.get("instance_id")
            if not isinstance(name, str):
                raise MalformedError(f"vmdesc devices[{i}].name is not a string", offset=where, section="vmdesc")
            if not isinstance(instance_id, int) or isinstance(instance_id, bool) or not 0 <= instance_id < 1 << 32:
                raise MalformedError(
                    f"vmdesc devices[{i}].instance_id is not a 32-bit unsigned integer", offset=where, section="vmdesc"
                )
            try:
                check_name(name, f"devices[{i}].name")
            except DecodeError as error:
                error.add_context(offset=where, section="vmdesc")
                raise
            index.setdefault((name, instance_id), []).append(entry)
        return index

    def __iter__(self) -> Iterator[StreamRecord]:
        self._origin = self._file.tell()  # offset 0 of the stream in the file
        self._reader = ByteReader(self._file)
        return self._records(self._reader)

    @property
    def offset(self) -> int:
        """Bytes of the stream consumed: the end of the last record yielded (0 before iterating)."""
        reader = getattr(self, "_reader", None)
        return 0 if reader is None else reader.offset

    # ------------------------------------------------------------ framing

    def _records(self, r: ByteReader) -> Iterator[StreamRecord]:
        yield self._file_header(r)
        ram: RamCodec | None = None
        started: dict[int, str] = {}
        used_ids: set[int] = set()
        if r.peek(1) == bytes((SectionType.CONFIGURATION,)):
            configuration = self._configuration(r)
            if self.vmdesc is not None and "configuration" in self.vmdesc:  # QEMU >= 9.0
                check_vmdesc_entry(self.vmdesc["configuration"], configuration.record, self._vmdesc_offset)
            yield configuration
            self._footers = True
            announced = page_size_of(configuration.record)
            if announced is not None and not self._explicit_page_size:
                self.page_size = announced
            capabilities = capabilities_of(configuration.record)
            ignore_shared = "x-ignore-shared" in capabilities
            mapped_ram = "mapped-ram" in capabilities
        else:
            ignore_shared = mapped_ram = False
        while True:
            start = r.offset
            type_byte = r.u8()
            try:
                kind = SectionType(type_byte)
            except ValueError:
                raise MalformedError(f"unknown section type byte {type_byte:#04x}", offset=start) from None
            if kind == SectionType.EOF:
                yield Eof()
                yield from self._after_eof(r)
                return
            if kind == SectionType.COMMAND:
                yield self._command(r)
                continue
            if kind not in (SectionType.START, SectionType.PART, SectionType.END, SectionType.FULL):
                raise MalformedError(f"section type {kind.name} where a section must start", offset=start)
            header = self._section_header(r, kind, started, used_ids)
            yield header
            idstr = started.get(header.section_id, header.idstr or "")
            try:
                if idstr == "ram":
                    if ram is None:
                        ram = RamCodec(
                            self.page_size,
                            limits=self._limits,
                            ignore_shared=ignore_shared,
                            batch_pages=self._batch_pages,
                            mapped=self._mapped() if self._batch_pages or mapped_ram else None,
                            mapped_ram=RandomAccess(self._file, self._origin) if mapped_ram else None,
                        )
                    yield from ram.decode_body(r)
                elif idstr == "spapr/htab":
                    yield from decode_htab_body(r)
                elif kind == SectionType.FULL:
                    yield self._device(r, header, used_ids, started)
                else:
                    yield self._raw(r, header.section_id, used_ids, started, "iterative section we do not decode")
                footer = self._footer(r, header.section_id)
            except DecodeError as error:
                error.add_context(offset=r.offset, section=idstr, version=header.version)
                raise
            if footer is not None:
                yield footer

    def _mapped(self) -> MappedInput | None:
        """The input file mapped read-only, from the stream's first byte, when it is a plain regular file."""
        if not isinstance(self._file, (io.BufferedReader, io.FileIO)):
            return None  # a decompressed spool, a pipe's copy, a caller's own object: read through the byte reader
        try:
            descriptor = self._file.fileno()
            status = os.fstat(descriptor)
            if not stat.S_ISREG(status.st_mode) or status.st_size <= self._origin:
                return None
            mapping = mmap.mmap(descriptor, 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):
            return None  # a file system without mmap: the byte reader still works
        return MappedInput(mapping, self._origin)

    def _file_header(self, r: ByteReader) -> FileHeader:
        if not r.peek(1):
            raise TruncatedError("empty input: not a QEMU migration stream", offset=0)
        head = r.peek(16)
        magic = r.u32()
        if magic != QEMU_MAGIC:
            what = container_name(head)
            raise MalformedError(f"not a QEMU migration stream: magic {magic:#010x}, expected {QEMU_MAGIC:#010x}"
                                 + (f": {what}" if what else ""), offset=0)
        version = r.u32()
        if version == 2:
            raise UnsupportedError("file version 2 (pre-2009 savevm format)", offset=4)
        if version != QEMU_FILE_VERSION:
            raise MalformedError(f"file version {version}, expected {QEMU_FILE_VERSION}", offset=4)
        return FileHeader(magic, version)

    def _configuration(self, r: ByteReader) -> Configuration:
        r.skip(1)
        try:
            record = decode(CONFIGURATION, r, 0, limits=self._limits)
        except DecodeError as error:
            error.add_context(offset=r.offset, section="configuration")
            raise
        return Configuration(CONFIGURATION, record)

    def _section_header(
        self, r: ByteReader, kind: SectionType, started: dict[int, str], used_ids: set[int]
    ) -> SectionHeader:
        start = r.offset
        section_id = r.u32()
        if kind in (SectionType.PART, SectionType.END):
            if section_id not in started:
                raise MalformedError(f"{kind.name} for section id {section_id}, which was never started", offset=start)
            return SectionHeader(kind, section_id)
        idstr = r.read(r.u8()).decode("latin-1")
        instance_id = r.u32()
        version = r.u32()
        if section_id in used_ids:
            raise MalformedError(f"section id {section_id} used twice", offset=start, section=idstr)
        used_ids.add(section_id)
        if kind == SectionType.START:
            started[section_id] = idstr
            if idstr == "ram" and version != _RAM_VERSION:
                raise UnsupportedError(f"RAM section version {version}, expected {_RAM_VERSION}", offset=start, section=idstr)
        return SectionHeader(kind, section_id, idstr, instance_id, version)

    def _footer(self, r: ByteReader, section_id: int) -> SectionFooter | None:
        if r.peek(1) != bytes((SectionType.FOOTER,)):
            if self._footers:
                raise MalformedError("missing section footer", offset=r.offset)
            return None
        start = r.offset
        r.skip(1)
        read_id = r.u32()
        if read_id != section_id:
            raise MalformedError(f"section footer names id {read_id}, expected {section_id}", offset=start)
        self._footers = True
        return SectionFooter(read_id)

    def _command(self, r: ByteReader) -> Command:
        start = r.offset
        command = r.u16()
        record = Command(command, r.read(r.u16()))
        allowed = COMMAND_LENGTHS.get(command)
        if allowed is not None and len(record.data) not in allowed:  # the loader refuses it ("received bad length")
            raise MalformedError(f"{record.name} command with {len(record.data)} bytes of payload, QEMU's loader takes "
                                 f"{' or '.join(map(str, allowed))}", offset=start, section="command")
        return record

    def _after_eof(self, r: ByteReader) -> Iterator[StreamRecord]:
        if r.peek(1) == bytes((SectionType.VMDESCRIPTION,)):
            start = r.offset
            r.skip(1)
            length = r.u32()
            if length > self._limits.max_vmdesc:
                raise LimitExceededError(
                    f"vmdesc of {length} bytes exceeds limits.max_vmdesc = {self._limits.max_vmdesc}",
                    offset=start,
                    section="vmdesc",
                )
            trailer = self._trailer
            if trailer is not None and trailer.vmdesc is not None and trailer.eof_offset + 1 == start:
                r.skip(length)  # the trailer locator already holds these bytes
                yield VmDescription(trailer.vmdesc)
            else:
                yield VmDescription(r.read(length))
        # Whatever follows (QEMU's loader never reads it) is streamed, a chunk at a time.
        while rest := r.peek(_TRAILING_CHUNK):
            r.skip(len(rest))
            yield TrailingData(rest)

    # ------------------------------------------------------------ bodies

    def _candidates(self, header: SectionHeader) -> list[tuple[str, Sequence[Description]]]:
        """The ways to read this section, in order: each description's source and its layouts (built as tried)."""
        assert header.idstr is not None and header.instance_id is not None and header.version is not None
        found: list[tuple[str, Sequence[Description]]] = []
        lookup = self._descriptions
        if lookup is not None:
            for d in lookup.candidates(header.idstr, header.instance_id, header.version):
                found.append((lookup.source_of(d), d.layouts()))
        queue = self._vmdesc_devices.get((header.idstr, header.instance_id))
        if queue:
            entry = queue.pop(0)
            try:
                found.append((VMDESC_SOURCE, (description_from_vmdesc(entry, limits=self._limits),)))
            except DecodeError as error:
                error.add_context(section="vmdesc")
                raise
        return found

    def _device(
        self, r: ByteReader, header: SectionHeader, used_ids: set[int], started: dict[int, str]
    ) -> DeviceState | RawBody:
        assert header.idstr is not None and header.instance_id is not None and header.version is not None
        failure: DecodeError | None = None
        failed_source = ""
        groups = self._candidates(header)
        # (group, layout) of every way, without building a lazy layout before it is tried
        ways = [(g, j) for g, (_, layouts) in enumerate(groups) for j in range(len(layouts))]
        # the input ended inside this group's layout: its later alternatives, which are larger, end there too
        ran_out: int | None = None
        for i, (group, j) in enumerate(ways):
            if group == ran_out:
                continue
            source, description = groups[group][0], groups[group][1][j]
            mark = r.mark()
            misfit = False
            try:
                record = decode(description, r, header.version, limits=self._limits)
                # A complete decode is authoritative: the section must end here.
                misfit = True
                self._expect_boundary(r, header.section_id, used_ids, started, f"{source} description {description.name!r}")
            except DecodeError as error:
                r.rewind(mark)
                r.release(mark)
                if isinstance(error, TruncatedError) and not misfit:  # the decode itself ran out of input
                    ran_out = group
                last = all(g == ran_out for g, _ in ways[i + 1 :])
                # A description of ours that does not fit this sender (a layout it cannot
                # read, or no section end where it stops) gives way; without a vmdesc the
                # body is then kept raw, with the reason.  The vmdesc is the stream's own
                # account: when it does not fit, the stream is damaged.
                ours_misfit = source != VMDESC_SOURCE and (
                    misfit and isinstance(error, MalformedError) or isinstance(error, UnsupportedError)
                )
                gives_way = ours_misfit or isinstance(error, (UnknownSubsectionError, VersionError))
                if last and not gives_way:
                    raise
                # Our description does not match this sender: try the next way.
                if failed_source != source:  # the first variant's reason is the telling one
                    failure, failed_source = error, source
                continue
            r.release(mark)
            if source == TYPED_SOURCE:
                failure = None  # an alternative layout of ours fitted: nothing was set aside
            return DeviceState(
                header.idstr,
                header.instance_id,
                header.version,
                description,
                record,
                source,
                r.offset - mark,
                # another variant of ours that did not fit is no fallback
                None if failure is None or failed_source == source else str(failure),
            )
        reason = "no description" if failure is None else f"descriptions failed: {failure}"
        try:
            raw = self._raw(r, header.section_id, used_ids, started, reason)
            return raw if failure is None else attrs.evolve(raw, failed_source=failed_source)
        except DecodeError:
            if failure is not None:
                raise failure from None
            raise

    def _expect_boundary(
        self, r: ByteReader, section_id: int, used_ids: set[int], started: dict[int, str], what: str
    ) -> None:
        if is_boundary(r, section_id, self._scan_context(used_ids, started)):
            return
        if len(r.peek(_LOOKAHEAD)) < _LOOKAHEAD:
            raise TruncatedError(f"the stream ends inside or just after the section the {what} decoded", offset=r.offset)
        raise MalformedError(f"no section boundary where the {what} ends", offset=r.offset)

    def _scan_context(self, used_ids: set[int], started: dict[int, str]) -> ScanContext:
        eof = None if self._trailer is None else self._trailer.eof_offset
        return ScanContext(used_ids, set(started), self._footers, eof, self._vmdesc_versions)

    def _raw(
        self, r: ByteReader, section_id: int, used_ids: set[int], started: dict[int, str], reason: str
    ) -> RawBody:
        length = find_body_end(r, section_id, self._scan_context(used_ids, started), self._limits)
        return RawBody(r.read_once(length), reason)
