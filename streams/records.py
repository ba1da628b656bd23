"""The records a QEMU savevm stream is made of, in wire order.

A stream is read as a flat sequence of these records and written back from
one; RAM pages are records too, so a consumer that does not keep them keeps
memory bounded whatever the guest's size.
"""

from __future__ import annotations

import enum
from typing import Any, Iterator, Union, get_args

import attrs

from vmstate.description import Description, Record
from vmstate.limits import DEFAULT_LIMITS, Limits
from vmstate.vmdesc import parse_vmdesc

__all__ = [
    "SectionType",
    "RamFlag",
    "FileHeader",
    "Configuration",
    "SectionHeader",
    "SectionFooter",
    "DeviceState",
    "RawBody",
    "RamBlock",
    "RamBlockList",
    "RamPage",
    "RamPageRun",
    "RamZero",
    "RamEos",
    "RamFlush",
    "MappedRamHeader",
    "MappedRamBlock",
    "MappedRamBitmap",
    "MappedRamFill",
    "HtabHeader",
    "HtabChunk",
    "HtabEnd",
    "Command",
    "CommandKind",
    "COMMAND_LENGTHS",
    "Eof",
    "VmDescription",
    "TrailingData",
    "StreamRecord",
    "STREAM_RECORD_TYPES",
    "QEMU_MAGIC",
    "QEMU_FILE_VERSION",
]

QEMU_MAGIC = 0x5145564D  # "QEVM"
QEMU_FILE_VERSION = 3


class SectionType(enum.IntEnum):
    """Type byte before each top-level item (migration/savevm.c)."""

    EOF = 0x00
    START = 0x01
    PART = 0x02
    END = 0x03
    FULL = 0x04
    SUBSECTION = 0x05
    VMDESCRIPTION = 0x06
    CONFIGURATION = 0x07
    COMMAND = 0x08
    FOOTER = 0x7E


class RamFlag(enum.IntFlag):
    """Flags in the low bits of each RAM record's be64 (migration/ram.c)."""

    FULL = 0x01
    ZERO = 0x02
    MEM_SIZE = 0x04
    PAGE = 0x08
    EOS = 0x10
    CONTINUE = 0x20
    XBZRLE = 0x40
    HOOK = 0x80
    COMPRESS_PAGE = 0x100
    #: QEMU >= 8.1 with multifd (migration/ram.c RAM_SAVE_FLAG_MULTIFD_FLUSH): sync the multifd channels here
    MULTIFD_FLUSH = 0x200


class CommandKind(enum.IntEnum):
    """QEMU_VM_COMMAND numbers (migration/savevm.c ``enum qemu_vm_cmd``)."""

    OPEN_RETURN_PATH = 1
    PING = 2
    POSTCOPY_ADVISE = 3
    POSTCOPY_LISTEN = 4
    POSTCOPY_RUN = 5
    POSTCOPY_RAM_DISCARD = 6
    POSTCOPY_RESUME = 7
    PACKAGED = 8
    RECV_BITMAP = 9
    ENABLE_COLO = 10
    #: QEMU >= 10.0 (``send-switchover-start``): the source stops iterating, the device state follows
    SWITCHOVER_START = 11


@attrs.frozen
class FileHeader:
    """``QEVM`` magic and file format version."""

    magic: int = QEMU_MAGIC
    version: int = QEMU_FILE_VERSION


@attrs.frozen
class Configuration:
    """The configuration section (machine type, optional subsections)."""

    description: Description
    record: Record

    @property
    def machine(self) -> str:
        return bytes(self.record.fields["name"]).decode("ascii", "replace")


@attrs.frozen
class SectionHeader:
    """START/FULL carry idstr, instance and version; PART/END only the id."""

    kind: SectionType
    section_id: int
    idstr: str | None = None
    instance_id: int | None = None
    version: int | None = None


@attrs.frozen
class SectionFooter:
    """``0x7E`` + section id after each section body (machine types >= 2.4)."""

    section_id: int


@attrs.frozen
class DeviceState:
    """A device section body decoded into named fields.

    ``record`` is what was on the wire; ``source`` says which description
    decoded it: ``typed`` (a state class of ours) or ``vmdesc`` (the
    stream's own JSON trailer).  ``fallback`` is why a preferred description
    was set aside (e.g. our model rejected bytes the vmdesc only sizes).
    """

    idstr: str
    instance_id: int
    version: int
    description: Description
    record: Record
    source: str
    size: int
    fallback: str | None = None

    @property
    def state(self) -> Any:
        """The typed state object when a state class decoded it, else the record."""
        from vmstate.typed import from_record

        cls = self.description.cls
        return from_record(cls, self.record) if cls is not None else self.record


@attrs.frozen
class RawBody:
    """Body bytes kept undecoded (no description for the section)."""

    data: bytes
    reason: str
    #: which description gave way first ("typed" for ours, "dump", "vmdesc"), when any did
    failed_source: str | None = attrs.field(default=None, eq=False)


@attrs.frozen
class RamBlock:
    """One RAM block of the MEM_SIZE list."""

    name: str
    length: int
    #: only with postcopy-ram when the block's page size differs (not detectable)
    page_size: int | None = None
    #: only when x-ignore-shared is on (configuration/capabilities)
    address: int | None = None
    #: only in a mapped-ram file (configuration/capabilities ``mapped-ram``): where its bitmap and pages are
    mapped: MappedRamHeader | None = None


@attrs.frozen
class MappedRamHeader:
    """QEMU's ``MappedRamHeader`` after a block's entry in a mapped-ram file (migration/ram.c, 28 packed bytes).

    ``bitmap_offset`` and ``pages_offset`` are file offsets (from the file's
    first byte, which is the stream's): the block's dirty bitmap (one bit per
    page, host ``unsigned long`` words) and its pages, page ``i`` at
    ``pages_offset + i * page_size``.
    """

    version: int
    page_size: int
    bitmap_offset: int
    pages_offset: int

    def bitmap_size(self, length: int) -> int:
        """Bytes of the bitmap of a block of ``length`` bytes (64-bit words, as x86_64, ppc64 and aarch64 hosts have)."""
        pages = length // self.page_size
        return (pages + 63) // 64 * 8


@attrs.frozen
class RamBlockList:
    """The MEM_SIZE record: total size and the block list."""

    total: int
    blocks: tuple[RamBlock, ...]
    flags: int = RamFlag.MEM_SIZE

    @property
    def mapped(self) -> bool:
        """A mapped-ram block list: only the be64 is this record's; each block's entry is a ``MappedRamBlock``."""
        return any(block.mapped is not None for block in self.blocks)


@attrs.frozen
class RamPage:
    """A full page of guest RAM (flag PAGE)."""

    block: str
    offset: int
    flags: int
    data: bytes


@attrs.frozen
class RamPageRun:
    """Consecutive full pages of one block, each sent with CONTINUE: a batch of ``RamPage``s.

    The reader yields these only when asked (``batch_pages``), so consumers
    that hash or count pages skip a Python object per page.  ``raw`` is the
    exact wire bytes: ``count`` records of a be64 (offset | PAGE | CONTINUE)
    followed by the page; a read-only view of the input when the reader
    maps its file (``streams.qemu.ram``), bytes otherwise.  In a mapped-ram
    file the pages lie side by side at their block offsets: ``header`` is 0
    and ``raw`` is the pages alone.
    """

    block: str
    offset: int
    count: int
    page_size: int
    raw: bytes | memoryview = attrs.field(repr=False)
    #: bytes before each page in ``raw``: the record's be64 on the wire, none in a mapped-ram file
    header: int = 8

    def pages(self) -> Iterator[tuple[int, memoryview]]:
        """(offset, contents) of each page, without copying."""
        view = memoryview(self.raw)
        stride = self.header + self.page_size
        for i in range(self.count):
            start = i * stride + self.header
            yield self.offset + i * self.page_size, view[start : start + self.page_size]

    def expand(self) -> Iterator[RamPage]:
        """The same pages as single ``RamPage`` records."""
        flags = int(RamFlag.PAGE | RamFlag.CONTINUE)
        for offset, data in self.pages():
            yield RamPage(self.block, offset, flags, bytes(data))


@attrs.frozen
class RamZero:
    """A uniform page (flag ZERO); ``fill`` is the byte value."""

    block: str
    offset: int
    flags: int
    fill: int


@attrs.frozen
class RamEos:
    """End of this section's RAM records; ``value`` is the raw be64."""

    value: int = RamFlag.EOS


@attrs.frozen
class RamFlush:
    """A RAM record with the MULTIFD_FLUSH flag alone (QEMU >= 8.1 with multifd); ``value`` is the raw be64."""

    value: int = RamFlag.MULTIFD_FLUSH


@attrs.frozen
class MappedRamBlock:
    """One block's entry in a mapped-ram file: name, length (and what the capabilities add), then its header."""

    block: RamBlock


@attrs.frozen
class MappedRamBitmap:
    """A stretch of a block's bitmap as the file holds it: ``index`` is its first byte within the bitmap."""

    block: str
    index: int
    data: bytes = attrs.field(repr=False)


@attrs.frozen
class MappedRamFill:
    """Bytes of a mapped-ram file that QEMU's loader never reads (padding, pages whose bitmap bit is clear).

    ``data`` is None when they are all zero (a hole in a sparse file, and
    what a writer leaves as one), else the bytes as the file holds them.
    """

    length: int
    data: bytes | None = attrs.field(default=None, repr=False)


@attrs.frozen
class HtabHeader:
    """spapr/htab body header: hash table shift, 0 (chunks follow) or -1."""

    value: int


@attrs.frozen
class HtabChunk:
    """A run of hash PTEs: ``n_valid`` 16-byte PTEs then ``n_invalid`` cleared."""

    index: int
    n_valid: int
    n_invalid: int
    ptes: bytes


@attrs.frozen
class HtabEnd:
    """The all-zero record that ends a run of htab chunks."""


@attrs.frozen
class Command:
    """QEMU_VM_COMMAND (postcopy and friends): be16 command, payload."""

    command: int
    data: bytes

    @property
    def name(self) -> str:
        """The command's name in QEMU (``SWITCHOVER_START``), or its number."""
        try:
            return CommandKind(self.command).name
        except ValueError:
            return str(self.command)

    def arguments(self) -> dict[str, int]:
        """The payload's fields where QEMU gives it a fixed shape (migration/savevm.c ``loadvm_process_command``)."""
        data = self.data
        if self.command in (CommandKind.PING, CommandKind.PACKAGED) and len(data) == 4:
            return {"value" if self.command == CommandKind.PING else "length": int.from_bytes(data, "big")}
        if self.command == CommandKind.POSTCOPY_ADVISE and len(data) == 16:
            return {"host_page_size": int.from_bytes(data[:8], "big"), "target_page_size": int.from_bytes(data[8:], "big")}
        return {}


#: payload lengths QEMU's loader requires of a command (``mig_cmd_args``); absent: variable
COMMAND_LENGTHS: dict[int, tuple[int, ...]] = {
    CommandKind.OPEN_RETURN_PATH: (0,),
    CommandKind.PING: (4,),
    CommandKind.POSTCOPY_ADVISE: (0, 16),
    CommandKind.POSTCOPY_LISTEN: (0,),
    CommandKind.POSTCOPY_RUN: (0,),
    CommandKind.POSTCOPY_RESUME: (0,),
    CommandKind.PACKAGED: (4,),
    CommandKind.ENABLE_COLO: (0,),
    CommandKind.SWITCHOVER_START: (0,),
}


@attrs.frozen
class Eof:
    """The end of the device state."""


@attrs.frozen
class VmDescription:
    """The JSON trailer, kept as the exact bytes QEMU wrote."""

    raw: bytes

    def parsed(self, limits: Limits = DEFAULT_LIMITS, offset: int | None = None) -> dict[str, Any]:
        """Parse the JSON within ``limits`` (``vmstate.vmdesc.parse_vmdesc``); ``offset``: where the JSON starts."""
        return parse_vmdesc(self.raw, limits=limits, offset=offset)


@attrs.frozen
class TrailingData:
    """Bytes after the end of the stream that QEMU's loader ignores (the reader yields them 1 MiB at a time)."""

    data: bytes


StreamRecord = Union[
    FileHeader,
    Configuration,
    SectionHeader,
    SectionFooter,
    DeviceState,
    RawBody,
    RamBlockList,
    RamPage,
    RamPageRun,
    RamZero,
    RamEos,
    RamFlush,
    MappedRamBlock,
    MappedRamBitmap,
    MappedRamFill,
    HtabHeader,
    HtabChunk,
    HtabEnd,
    Command,
    Eof,
    VmDescription,
    TrailingData,
]

#: the member classes of ``StreamRecord``, for ``isinstance`` and for tests that a ``match`` covers them all
STREAM_RECORD_TYPES: tuple[type, ...] = get_args(StreamRecord)
