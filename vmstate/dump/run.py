"""Build ``vmstate dump``'s model of one stream: framing, device fields, RAM per block."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vmstate.plain import PlainPolicy
from vmstate.spill import Spill

__all__ = ["read_dump"]


def read_dump(stream: Path, descriptions: Any, spill: Spill, digest: str = "xxh3-128") -> dict[str, Any]:
    """Read ``stream`` (plain, xz or gzip) whole; long byte strings go to ``spill``, which must outlive the model.

    ``digest`` names the algorithm of each RAM block's content digest (``streams.qemu.block_digest.DIGESTS``).
    """
    from streams.qemu import StreamReader, summarize
    from streams.qemu.block_digest import BlockDigests
    from streams.files import open_stream

    with open_stream(stream) as source:
        reader = StreamReader(source, descriptions=descriptions, batch_pages=True)
        digests = BlockDigests(lambda: reader.page_size, lambda: reader.offset, digest)
        model = summarize(digests.tee(reader), PlainPolicy(bytes=spill.keep), record_digests=False)
    contents = digests.results()
    for block in model["ram"]:
        block.update(contents.get(block["name"], {}))
    return model
