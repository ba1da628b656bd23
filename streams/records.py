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
    "HtabHeader",
    "HtabChunk",
    "HtabEnd",
    "Command",
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


@attrs.frozen
class RamBlockList:
    """The MEM_SIZE record: total size and the block list."""

    total: int
    blocks: tuple[RamBlock, ...]
    flags: int = RamFlag.MEM_SIZE


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
    maps its file (``streams.qemu.ram``), bytes otherwise.
    """

    block: str
    offset: int
    count: int
    page_size: int
    raw: bytes | memoryview = attrs.field(repr=False)

    def pages(self) -> Iterator[tuple[int, memoryview]]:
        """(offset, contents) of each page, without copying."""
        view = memoryview(self.raw)
        stride = 8 + self.page_size
        for i in range(self.count):
            start = i * stride + 8
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
