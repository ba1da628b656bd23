"""Write ``StreamRecord``s back as a QEMU savevm stream, byte for byte."""

from __future__ import annotations

import struct
from typing import BinaryIO, Iterable

from streams.records import (
    Command,
    Configuration,
    DeviceState,
    Eof,
    FileHeader,
    HtabChunk,
    HtabEnd,
    HtabHeader,
    RamBlockList,
    RamEos,
    RamPage,
    RamPageRun,
    RamZero,
    RawBody,
    SectionFooter,
    SectionHeader,
    SectionType,
    StreamRecord,
    TrailingData,
    VmDescription,
)
from vmstate.engine import encode
from vmstate.errors import EncodeError
from vmstate.wire import ByteWriter

from .htab import encode_htab_record
from .ram import RamCodec

__all__ = ["StreamWriter", "encode_record"]

_HEADER = struct.Struct(">II")
_ID = struct.Struct(">BI")
_FOOTER = struct.Struct(">BI")
_VMDESC = struct.Struct(">BI")
_COMMAND = struct.Struct(">HH")


def _section_header(record: SectionHeader) -> bytes:
    head = _ID.pack(record.kind, record.section_id)
    if record.kind in (SectionType.PART, SectionType.END):
        return head
    if record.idstr is None or record.instance_id is None or record.version is None:
        raise EncodeError(f"{record.kind.name} header needs idstr, instance_id and version")
    idstr = record.idstr.encode("latin-1")
    return head + bytes((len(idstr),)) + idstr + _HEADER.pack(record.instance_id, record.version)


def encode_record(record: StreamRecord) -> bytes:
    """The exact bytes of one record."""
    match record:
        case RamPage() | RamPageRun() | RamZero() | RamEos() | RamBlockList():
            return RamCodec.encode(record)
        case DeviceState():
            return encode(record.description, record.record, path=())
        case SectionHeader():
            return _section_header(record)
        case SectionFooter():
            return _FOOTER.pack(SectionType.FOOTER, record.section_id)
        case HtabHeader() | HtabChunk() | HtabEnd():
            return encode_htab_record(record)
        case RawBody() | TrailingData():
            return record.data
        case FileHeader():
            return _HEADER.pack(record.magic, record.version)
        case Configuration():
            return bytes((SectionType.CONFIGURATION,)) + encode(record.description, record.record)
        case Eof():
            return bytes((SectionType.EOF,))
        case VmDescription():
            return _VMDESC.pack(SectionType.VMDESCRIPTION, len(record.raw)) + record.raw
        case Command():
            return bytes((SectionType.COMMAND,)) + _COMMAND.pack(record.command, len(record.data)) + record.data
    raise EncodeError(f"not a stream record: {type(record).__name__}")


class StreamWriter:
    """Write records to a binary file object."""

    def __init__(self, sink: BinaryIO) -> None:
        self._out = ByteWriter(sink)

    @property
    def offset(self) -> int:
        return self._out.offset

    def write(self, record: StreamRecord) -> None:
        self._out.write(encode_record(record))

    def write_all(self, records: Iterable[StreamRecord]) -> None:
        for record in records:
            self.write(record)
