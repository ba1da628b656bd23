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
        case (records.RamPage() | records.RamPageRun() | records.RamZero() | records.RamEos() | records.RamBlockList()
              | records.RamFlush() | records.MappedRamBlock() | records.MappedRamBitmap() | records.MappedRamFill()):
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


#: zeros written at a time where a sink cannot seek over a mapped-ram hole
_ZEROS = bytes(1 << 20)


class StreamWriter:
    """Write records to a binary file object; a mapped-ram file's holes stay holes in a seekable one."""

    def __init__(self, sink: BinaryIO) -> None:
        self._sink = sink
        self._out = ByteWriter(sink)
        self._holes = sink.seekable()
        self._pending = False  # the last record was a hole that nothing has been written after yet

    @property
    def offset(self) -> int:
        return self._out.offset

    def write(self, record: StreamRecord) -> None:
        if isinstance(record, records.MappedRamFill) and record.data is None:
            self._hole(record.length)
            return
        self._out.write(encode_record(record))
        self._pending = False

    def _hole(self, length: int) -> None:
        if self._holes:
            self._sink.seek(length, 1)
            self._out.offset += length
            self._pending = length > 0 or self._pending
            return
        for start in range(0, length, len(_ZEROS)):
            self._out.write(_ZEROS[: min(len(_ZEROS), length - start)])

    def finish(self) -> None:
        """Give the file its full size when it ends in a hole (nothing was written over the last one)."""
        if self._pending:
            self._sink.truncate(self._sink.tell())
            self._pending = False

    def write_all(self, records: Iterable[StreamRecord]) -> None:
        for record in records:
            self.write(record)
        self.finish()
