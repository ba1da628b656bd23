"""Build ``vmstate dump``'s model of one stream: framing, device fields, RAM per block."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vmstate.plain import PlainPolicy
from vmstate.spill import Spill

__all__ = ["read_dump"]


def read_dump(stream: Path, descriptions: Any, spill: Spill) -> dict[str, Any]:
    """Read ``stream`` (plain, xz or gzip) whole; long byte strings go to ``spill``, which must outlive the model."""
    from streams.qemu import StreamReader, summarize
    from streams.qemu.block_digest import BlockDigests
    from streams.files import open_stream

    with open_stream(stream) as source:
        reader = StreamReader(source, descriptions=descriptions, batch_pages=True)
        digests = BlockDigests(lambda: reader.page_size, lambda: reader.offset)
        model = summarize(digests.tee(reader), PlainPolicy(bytes=spill.keep))
    contents = digests.results()
    for block in model["ram"]:
        block.update(contents.get(block["name"], {}))
    return model
