"""A JSON-ready summary of a whole stream: framing, device fields, RAM per block.

Device sections are rendered field by field; RAM is summarised per block
(page and zero-page counts and ``sha256``: a SHA-256 over the page records
in stream order, each the be64 offset then the page or, for a zero page,
its fill byte), so the summary stays small whatever the guest's size.  That
digest is not the block's bytes' (``block_digest`` computes that one); it
stays as it is because the compatibility goldens record it, and it is left
out (``record_digests=False``) where nothing compares it: it costs a SHA-256
pass over every page.
"""

from __future__ import annotations

import hashlib
from typing import Any, Iterable

from streams import records
from streams.records import StreamRecord
from vmstate.lookup import RAW_SOURCE
from vmstate.plain import JSON, PlainPolicy, record_to_plain

from .naming import unnamed_reason

__all__ = ["summarize"]


class _Block:
    def __init__(self, name: str, length: int, digest: bool, mapped: records.MappedRamHeader | None = None) -> None:
        self.name, self.length, self.mapped = name, length, mapped
        self.pages = self.zero_pages = 0
        self.digest = hashlib.sha256() if digest else None

    def add_page(self, offset: int, data: bytes | memoryview) -> None:
        """Count a full page and fold its offset and contents into the digest."""
        self.pages += 1
        if self.digest is not None:
            self.digest.update(offset.to_bytes(8, "big"))
            self.digest.update(data)

    def add_run(self, run: records.RamPageRun) -> None:
        """Count a run's pages (each folded into the digest, if there is one)."""
        if self.digest is None:
            self.pages += run.count
            return
        for offset, data in run.pages():
            self.add_page(offset, data)

    def add_zero(self, offset: int, fill: int) -> None:
        self.zero_pages += 1
        if self.digest is not None:
            self.digest.update(offset.to_bytes(8, "big"))
            self.digest.update(bytes((fill,)))

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "length": self.length, "pages": self.pages, "zero_pages": self.zero_pages}
        if self.mapped is not None:  # a mapped-ram file: where the block's bitmap and pages lie in it
            out["mapped_ram"] = {"version": self.mapped.version, "page_size": self.mapped.page_size,
                                 "bitmap_offset": self.mapped.bitmap_offset, "pages_offset": self.mapped.pages_offset}
        if self.digest is not None:
            out["sha256"] = self.digest.hexdigest()
        return out


def summarize(stream: Iterable[StreamRecord], plain: PlainPolicy = JSON, *, record_digests: bool = True) -> dict[str, Any]:
    """Summarise a stream's records as a JSON-ready dict (bytes as ``plain`` says: hex by default).

    ``record_digests``: give each RAM block its ``sha256`` over the page records (what the goldens hold).
    """
    out: dict[str, Any] = {"sections": [], "ram": [], "footers": False, "vmdesc": None}
    blocks: dict[str, _Block] = {}
    idstrs: dict[int, str] = {}
    htab_chunks = 0
    for record in stream:
        match record:
            case records.FileHeader():
                out["file_version"] = record.version
            case records.Configuration():
                out["configuration"] = record_to_plain(record.record, plain)
                out["machine"] = record.machine
            case records.SectionHeader():
                if record.idstr is not None:
                    idstrs[record.section_id] = record.idstr
                if record.kind.name == "FULL":
                    out["sections"].append(
                        {"section_id": record.section_id, "idstr": record.idstr, "instance_id": record.instance_id, "version": record.version}
                    )
            case records.DeviceState():
                section = out["sections"][-1]
                description = record.description
                section.update({"vmsd_name": description.vmsd_name, "source": record.source, "size": record.size})
                if description.name != description.vmsd_name:
                    section["description"] = description.name  # which variant of ours, e.g. piix4_pm@2.x
                if record.fallback is not None:
                    section["fallback"] = record.fallback
                unnamed = unnamed_reason(record)
                if unnamed is not None:
                    section["unnamed"] = unnamed
                section.update(record_to_plain(record.record, plain))
            case records.RawBody():
                if out["sections"] and out["sections"][-1].get("source") is None:
                    out["sections"][-1].update({"source": RAW_SOURCE, "size": len(record.data), "raw": plain.bytes(record.data), "reason": record.reason})
                    unnamed = unnamed_reason(record)
                    if unnamed is not None:
                        out["sections"][-1]["unnamed"] = unnamed
            case records.RamBlockList():
                for block in record.blocks:
                    blocks.setdefault(block.name, _Block(block.name, block.length, record_digests, block.mapped))
            case records.RamFlush():
                out["multifd_flushes"] = out.get("multifd_flushes", 0) + 1
            case records.RamPageRun():
                blocks[record.block].add_run(record)
            case records.RamPage():
                blocks[record.block].add_page(record.offset, record.data)
            case records.RamZero():
                blocks[record.block].add_zero(record.offset, record.fill)
            case records.HtabChunk():
                htab_chunks += 1
            case records.SectionFooter():
                out["footers"] = True
            case records.VmDescription():
                out["vmdesc"] = {"size": len(record.raw), "sha256": hashlib.sha256(record.raw).hexdigest()}
            case records.Command():
                out.setdefault("commands", []).append({"command": record.command, "data": plain.bytes(record.data)})
            case records.TrailingData():
                out["trailing_bytes"] = out.get("trailing_bytes", 0) + len(record.data)
    out["ram"] = [b.as_json() for b in blocks.values()]
    out["iterative_sections"] = sorted(set(idstrs.values()) - {s["idstr"] for s in out["sections"]})
    if htab_chunks:
        out["htab_chunks"] = htab_chunks
    return out
