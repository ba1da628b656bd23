"""What one side of a diff holds: device sections as value trees, RAM as page tables.

Device state is small and kept whole; RAM pages are hashed into on-disk
``PageTable``s as they stream past, so memory does not grow with the guest.
Iterative sections other than RAM (ppc64's ``spapr/htab``, anything we keep
raw) are reduced to a digest and a count; a long body kept raw goes to a
temporary file (``vmstate.spill``).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

import attrs
import xxhash

from streams import records
from streams.records import StreamRecord
from vmstate.errors import DecodeError
from vmstate.lookup import RAW_SOURCE
from vmstate.plain import DIFF, to_plain
from vmstate.spill import Bytes, Spill

from .pages import PageTable, fill_digest, page_digest, run_digests

__all__ = ["SectionImage", "RamBlockImage", "StreamImage", "value_tree", "collect"]


def value_tree(value: Any) -> Any:
    """A decoded value as plain data: a Record becomes ``{"version", "fields", "subsections"}``, bytes stay bytes."""
    return to_plain(value, DIFF)


@attrs.define
class SectionImage:
    """One section of one side, keyed by (idstr, instance id)."""

    idstr: str
    instance_id: int
    version: int | None
    #: ``typed``, ``vmdesc``, ``raw`` (kept undecoded) or ``iterative``
    source: str = "raw"
    vmsd_name: str | None = None
    tree: Any = None
    #: the body of a section kept raw; a long one lives in the image's spill file
    raw: Bytes | None = None
    #: iterative sections: digest over their records and how many there were
    digest: Any = None
    records: int = 0


@attrs.define
class RamBlockImage:
    """One RAM block: its announced length and its page table."""

    name: str
    length: int
    table: PageTable = attrs.field(factory=PageTable)
    pages: int = 0


@attrs.define
class StreamImage:
    """Everything of one side that the comparison looks at."""

    path: str
    format: str
    file_version: int | None = None
    configuration: Any = None
    sections: dict[tuple[str, int], SectionImage] = attrs.Factory(dict)
    ram: dict[str, RamBlockImage] = attrs.Factory(dict)
    page_size: int = 4096
    commands: list[tuple[int, bytes]] = attrs.Factory(list)
    #: the reader yields data after the end 1 MiB at a time: a bytearray grows in linear time
    trailing: bytearray = attrs.Factory(bytearray)
    footers: bool = False
    #: idstr of every section the input had, wanted or not
    seen: set[str] = attrs.Factory(set)
    #: where long raw bodies are kept (on disk, compared a chunk at a time)
    spill: Spill = attrs.Factory(Spill)

    def close(self) -> None:
        """Drop the page tables' and the raw bodies' temporary files."""
        for block in self.ram.values():
            block.table.close()
        self.spill.close()


def collect(
    path: str,
    format: str,
    stream: Iterable[StreamRecord],
    *,
    page_size: Callable[[], int] | None = None,
    wanted: Callable[[str], bool] = lambda _idstr: True,
    offset: Callable[[], int | None] | None = None,
) -> StreamImage:
    """Read one side's records into a ``StreamImage``; ``wanted`` filters sections by idstr.

    ``offset`` tells where the input is, so that an error raised here (a RAM
    page the diff cannot track) names a byte offset like the reader's own.
    """
    image = StreamImage(path, format)
    by_id: dict[int, SectionImage] = {}
    current: SectionImage | None = None
    pages_seen = False
    try:
        for record in stream:
            match record:
                case records.SectionHeader():
                    current = _section(image, by_id, record)
                case records.RamPageRun():
                    _page_run(image, record)
                case records.RamPage() | records.RamZero():
                    if not pages_seen and page_size is not None:
                        image.page_size = page_size()
                    pages_seen = True
                    _page(image, record)
                case records.DeviceState():
                    if current is not None and wanted(current.idstr):
                        current.source, current.vmsd_name = record.source, record.description.name
                        current.tree = value_tree(record.record)
                case records.RawBody():
                    if current is not None and current.source == "iterative":
                        _fold(current, record.data)
                    elif current is not None and wanted(current.idstr):
                        current.source, current.raw = RAW_SOURCE, image.spill.keep(record.data)
                case records.HtabHeader() | records.HtabChunk():
                    if current is not None:
                        _fold(current, repr(record).encode())
                case records.RamBlockList():
                    for block in record.blocks:
                        if block.name not in image.ram:
                            image.ram[block.name] = RamBlockImage(block.name, block.length)
                            if block.mapped is not None:  # the pages a mapped-ram file leaves out are zero
                                image.ram[block.name].table.absent_is_zero(block.mapped.page_size)
                case _:
                    _framing(image, record)
    except DecodeError as error:
        image.close()
        error.add_context(offset=offset() if offset is not None else None,
                          section=current.idstr if current is not None else None)
        raise
    except BaseException:
        image.close()
        raise
    image.seen = {idstr for idstr, _ in image.sections}
    image.sections = {key: s for key, s in image.sections.items() if wanted(s.idstr)}
    return image


def _section(image: StreamImage, by_id: dict[int, SectionImage], header: records.SectionHeader) -> SectionImage | None:
    if header.kind in (records.SectionType.PART, records.SectionType.END):
        return by_id.get(header.section_id)
    assert header.idstr is not None and header.instance_id is not None
    key = (header.idstr, header.instance_id)
    section = SectionImage(header.idstr, header.instance_id, header.version)
    if header.kind == records.SectionType.START:
        section.source, section.digest = "iterative", xxhash.xxh3_128()
    image.sections[key] = section
    by_id[header.section_id] = section
    return section


def _fold(section: SectionImage, data: bytes) -> None:
    """Fold one record into the section's digest (HTAB records may come in a full section, not only an iterative one)."""
    if section.digest is None:
        section.source, section.digest = "iterative", xxhash.xxh3_128()
    section.digest.update(len(data).to_bytes(8, "big"))
    section.digest.update(data)
    section.records += 1


def _block(image: StreamImage, name: str) -> RamBlockImage:
    """The block a page belongs to (one the block list did not announce gets length 0)."""
    block = image.ram.get(name)
    if block is None:
        block = image.ram[name] = RamBlockImage(name, 0)
    return block


def _page(image: StreamImage, record: records.RamPage | records.RamZero) -> None:
    block = _block(image, record.block)
    if isinstance(record, records.RamPage):
        image.page_size = len(record.data) or image.page_size
    index = record.offset // image.page_size
    if isinstance(record, records.RamPage):
        block.table.set(index, page_digest(record.data))
    else:
        block.table.set(index, fill_digest(record.fill, image.page_size))
    block.pages += 1


def _page_run(image: StreamImage, run: records.RamPageRun) -> None:
    image.page_size = run.page_size
    block = _block(image, run.block)
    block.table.set(run.offset // run.page_size, run_digests(run.raw, run.count, run.page_size, run.header))
    block.pages += run.count


def _framing(image: StreamImage, record: StreamRecord) -> None:
    match record:
        case records.FileHeader(version=version):
            image.file_version = version
        case records.Configuration():
            image.configuration = value_tree(record.record)
        case records.SectionFooter():
            image.footers = True
        case records.Command(command=command, data=data):
            image.commands.append((command, data))
        case records.TrailingData(data=data):
            image.trailing += data
