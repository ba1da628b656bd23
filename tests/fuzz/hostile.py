"""Hand-built hostile QEMU streams: the reader-side classes of issue 12 (section 3).

Shared by ``tests/streams/qemu/test_hostile_reader.py`` (one regression test per class)
and the fuzzer's ``vmdesc``, ``tail``, ``grow`` and ``pages`` mutations.
Each builder takes the bytes of a valid stream and the offset of its EOF
byte, or builds a stream from records.
"""

from __future__ import annotations

import io
import json
from typing import Any

from streams.qemu import (
    Eof,
    FileHeader,
    RamBlock,
    RamBlockList,
    RamEos,
    RamPage,
    SectionHeader,
    StreamWriter,
    VmDescription,
)
from streams.records import RamFlag, SectionType

__all__ = [
    "with_vmdesc",
    "vmdesc_of",
    "deep_json",
    "wide_json",
    "with_surrogate",
    "big_page_stream",
]


def with_vmdesc(stream: bytes, eof: int, raw: bytes) -> bytes:
    """``stream`` up to its EOF byte, then a vmdesc trailer holding ``raw``."""
    return stream[: eof + 1] + bytes((SectionType.VMDESCRIPTION,)) + len(raw).to_bytes(4, "big") + raw


def vmdesc_of(stream: bytes, eof: int) -> dict[str, Any]:
    """The stream's vmdesc JSON, parsed."""
    return json.loads(stream[eof + 6 :])  # type: ignore[no-any-return]


def deep_json(depth: int) -> bytes:
    """A vmdesc whose ``devices`` list holds one value nested ``depth`` arrays deep."""
    return b'{"page_size": 4096, "devices": [' + b"[" * depth + b"]" * depth + b"]}"


def wide_json(values: int) -> bytes:
    """A vmdesc with an extra list of ``values`` empty lists: 3 bytes each, ~34 parsed (the densest JSON)."""
    return b'{"page_size": 4096, "devices": [], "x": [' + b"[]," * (values - 1) + b"[]]}"


def with_surrogate(text: str, key: str) -> str:
    """``text`` (JSON) with a lone surrogate escape put at the start of the first ``key`` string value."""
    marker = f'"{key}": "'
    at = text.index(marker) + len(marker)
    return text[:at] + "\\ud800" + text[at:]


def big_page_stream(page_size: int, pages: int, *, block: str = "pc.ram") -> bytes:
    """A minimal stream (2.2 layout, vmdesc naming ``page_size``) sending ``pages`` consecutive full pages."""
    out = io.BytesIO()
    writer = StreamWriter(out)
    length = page_size * pages
    flags = int(RamFlag.PAGE)
    records: list[Any] = [
        FileHeader(),
        SectionHeader(SectionType.START, 0, "ram", 0, 4),
        RamBlockList(length, (RamBlock(block, length),)),
        RamEos(),
        SectionHeader(SectionType.PART, 0),
    ]
    for i in range(pages):
        fill = bytes((i % 251 + 1,)) * page_size
        records.append(RamPage(block, i * page_size, flags | (int(RamFlag.CONTINUE) if i else 0), fill))
    records += [RamEos(), SectionHeader(SectionType.END, 0), RamEos(), Eof()]
    records.append(VmDescription(json.dumps({"page_size": page_size, "devices": []}).encode()))
    for record in records:
        writer.write(record)
    return out.getvalue()
