"""Unpack a stream into a directory: its decoded state as JSON, each RAM block as a file.

``state.json`` is what ``vmstate dump --json`` prints; ``ram/<block>`` holds
the block's guest memory at its offsets (a sparse file as long as the block:
pages never sent, and zero pages, read as zeros).  Pages are written as they
stream past, so memory stays bounded.  Block names come from the stream:
they are escaped into single safe file names, never paths.  The directory is
built under a temporary name beside the target and renamed into place at the
end, so a failed extraction leaves nothing half-written behind.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
import urllib.parse
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable, Iterator

from vmstate.errors import DecodeError, LimitExceededError, UnsupportedError

from .reader import DescriptionLookup, StreamReader
from .records import RamBlockList, RamPage, RamPageRun, RamZero, StreamRecord
from .summary import summarize

__all__ = ["extract_stream", "block_file_name", "MAX_BLOCK"]

#: the longest RAM block extracted: 16 TiB, the largest file ext4 holds
MAX_BLOCK = 1 << 44


def block_file_name(name: str) -> str:
    """A RAM block name as one file name: ``/rom@etc/acpi/tables`` -> ``%2From@etc%2Facpi%2Ftables``."""
    escaped = urllib.parse.quote(name, safe="@:+,=-_")
    return escaped if escaped not in ("", ".", "..") else escaped.replace(".", "%2E") or "%00"


class _BlockFiles:
    """One sparse file per RAM block, written page by page."""

    def __init__(self, directory: Path, page_size: Callable[[], int]) -> None:
        self.directory = directory
        self.page_size = page_size
        self.files: dict[str, BinaryIO] = {}

    def declare(self, blocks: RamBlockList) -> None:
        for block in blocks.blocks:
            if block.length > MAX_BLOCK:
                raise LimitExceededError(
                    f"RAM block {block.name!r} of {block.length:#x} bytes is longer than the "
                    f"{MAX_BLOCK:#x} bytes a block file may take"
                )
            if block.name not in self.files:
                handle = open(self.directory / block_file_name(block.name), "wb")
                self.files[block.name] = handle
                handle.truncate(block.length)

    def page(self, record: RamPage | RamPageRun | RamZero) -> None:
        handle = self.files[record.block]
        if isinstance(record, RamPageRun):  # consecutive pages: one vectored write
            written = os.pwritev(handle.fileno(), [data for _offset, data in record.pages()], record.offset)
            if written != record.count * record.page_size:
                raise OSError(errno.EIO, f"short write to {handle.name}")
        elif isinstance(record, RamPage):
            os.pwrite(handle.fileno(), record.data, record.offset)
        else:
            os.pwrite(handle.fileno(), bytes((record.fill,)) * self.page_size(), record.offset)

    def close(self) -> None:
        for handle in self.files.values():
            handle.close()


def _tee(records: Iterable[StreamRecord], blocks: _BlockFiles) -> Iterator[StreamRecord]:
    for record in records:
        if isinstance(record, RamBlockList):
            blocks.declare(record)
        elif isinstance(record, (RamPage, RamPageRun)):
            blocks.page(record)
        elif isinstance(record, RamZero):
            if record.fill:  # zero pages are already zero in a sparse file
                blocks.page(record)
        yield record


def extract_stream(
    source: BinaryIO, target: str | os.PathLike[str], *, descriptions: DescriptionLookup | None = None
) -> dict[str, Any]:
    """Extract ``source`` into the new directory ``target``; return the summary written to state.json."""
    target = Path(target)
    if target.exists():
        raise UnsupportedError(f"{target} exists: extraction makes a new directory and never writes into one")
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        (work / "ram").mkdir()
        reader = StreamReader(source, descriptions=descriptions, batch_pages=True)
        blocks = _BlockFiles(work / "ram", lambda: reader.page_size)
        try:
            summary = summarize(_tee(reader, blocks))
        except DecodeError as error:  # a block we refuse: say where the block list ended
            error.add_context(offset=reader.offset, section="ram")
            raise
        finally:
            blocks.close()
        summary["ram_files"] = {name: f"ram/{block_file_name(name)}" for name in blocks.files}
        (work / "state.json").write_text(json.dumps(summary, indent=2) + "\n")
        os.rename(work, target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return summary
