"""Write ``StreamRecord``s back as a QEMU savevm stream, byte for byte."""

from __future__ import annotations

import struct
from typing import BinaryIO, Iterable

from streams import records
from streams.records import StreamRecord
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


def _section_header(record: records.SectionHeader) -> bytes:
    head = _ID.pack(record.kind, record.section_id)
    if record.kind in (records.SectionType.PART, records.SectionType.END):
        return head
    if record.idstr is None or record.instance_id is None or record.version is None:
        raise EncodeError(f"{record.kind.name} header needs idstr, instance_id and version")
    idstr = record.idstr.encode("latin-1")
    return head + bytes((len(idstr),)) + idstr + _HEADER.pack(record.instance_id, record.version)


def encode_record(record: StreamRecord) -> bytes:
    """The exact bytes of one record."""
    match record:
        case records.RamPage() | records.RamPageRun() | records.RamZero() | records.RamEos() | records.RamBlockList():
            return RamCodec.encode(record)
        case records.DeviceState():
            return encode(record.description, record.record, path=())
        case records.SectionHeader():
            return _section_header(record)
        case records.SectionFooter():
            return _FOOTER.pack(records.SectionType.FOOTER, record.section_id)
        case records.HtabHeader() | records.HtabChunk() | records.HtabEnd():
            return encode_htab_record(record)
        case records.RawBody() | records.TrailingData():
            return record.data
        case records.FileHeader():
            return _HEADER.pack(record.magic, record.version)
        case records.Configuration():
            return bytes((records.SectionType.CONFIGURATION,)) + encode(record.description, record.record)
        case records.Eof():
            return bytes((records.SectionType.EOF,))
        case records.VmDescription():
            return _VMDESC.pack(records.SectionType.VMDESCRIPTION, len(record.raw)) + record.raw
        case records.Command():
            return bytes((records.SectionType.COMMAND,)) + _COMMAND.pack(record.command, len(record.data)) + record.data
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
