"""Unpack a stream into a directory: its decoded state as JSON, each RAM block as a file.

``state.json`` is what ``vmstate dump --json`` prints; ``ram/<block>`` holds
the block's guest memory at its offsets (a sparse file as long as the block:
pages never sent, and zero pages, read as zeros).  Pages are written as they
stream past, so memory stays bounded.  Block names come from the stream:
they are escaped into single safe file names, never paths, and kept within
NAME_MAX (a long name is cut and ends in ``~`` and a digest of the whole
name; ``~`` is escaped everywhere else, so names stay unique).

The directory is built as ``DIR.incomplete-XXXXXXXX`` beside the target (a
visible name: it can hold as much as the guest's RAM) and renamed into
place at the end, so a failed extraction leaves nothing half-written
behind.  A killed extraction cannot clean up: the next extraction to the
same DIR removes such leftovers, each once no live process holds its lock
(an ``flock`` on its ``.lock`` file, released by the kernel when its owner
dies), so a concurrent extraction's directory is never touched.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import urllib.parse
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable, Iterator

from streams._modes import new_directory_mode
from streams.records import RamBlockList, RamPage, RamPageRun, RamZero, StreamRecord
from vmstate.errors import DecodeError, LimitExceededError, UnsupportedError
from vmstate.lookup import DescriptionLookup, LookupFunction

from .reader import StreamReader
from .summary import summarize

__all__ = ["extract_stream", "block_file_name", "MAX_BLOCK", "NAME_MAX", "INCOMPLETE"]

#: the longest RAM block extracted: 16 TiB, the largest file ext4 holds
MAX_BLOCK = 1 << 44
#: bytes in one file name on Linux file systems (ext4, xfs, btrfs, tmpfs)
NAME_MAX = 255
#: what a work directory's name adds to the target's: DIR.incomplete-XXXXXXXX
INCOMPLETE = ".incomplete-"
_DIGEST_CHARS = 32
_LOCK = ".lock"


def block_file_name(name: str) -> str:
    """A RAM block name as one file name: ``/rom@etc/acpi/tables`` -> ``%2From@etc%2Facpi%2Ftables``.

    A name whose escaped form is longer than ``NAME_MAX`` keeps its first
    bytes, then ``~`` and 32 hex digits of the SHA-256 of the whole name.
    """
    escaped = urllib.parse.quote(name, safe="@:+,=-_").replace("~", "%7E")
    if escaped in ("", ".", ".."):
        escaped = escaped.replace(".", "%2E") or "%00"
    if len(escaped) > NAME_MAX:
        digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:_DIGEST_CHARS]
        head = escaped[: NAME_MAX - 1 - _DIGEST_CHARS]
        head = head[: head.rfind("%")] if "%" in head[-2:] else head  # never cut an escape in half
        escaped = f"{head}~{digest}"
    return escaped


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
                handle = open(self.directory / block_file_name(block.name), "xb")  # a second name for one file: refused
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
    source: BinaryIO, target: str | os.PathLike[str], *, descriptions: DescriptionLookup | LookupFunction | None = None
) -> dict[str, Any]:
    """Extract ``source`` into the new directory ``target``; return the summary written to state.json."""
    target = Path(target)
    if os.path.lexists(target):  # a symlink too, dangling or not: never written through
        raise UnsupportedError(f"{target} exists: extraction makes a new directory and never writes into one")
    _remove_leftovers(target)
    work = Path(tempfile.mkdtemp(prefix=_work_prefix(target), dir=target.parent))
    lock = open(work / _LOCK, "wb")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        (work / "ram").mkdir()
        reader = StreamReader(source, descriptions=descriptions, batch_pages=True)
        blocks = _BlockFiles(work / "ram", lambda: reader.page_size)
        try:
            summary = summarize(_tee(reader, blocks), record_digests=False)
        except DecodeError as error:  # a block we refuse: say where the block list ended
            error.add_context(offset=reader.offset, section="ram")
            raise
        finally:
            blocks.close()
        summary["ram_files"] = {name: f"ram/{block_file_name(name)}" for name in blocks.files}
        (work / "state.json").write_text(json.dumps(summary, indent=2) + "\n")
        os.unlink(work / _LOCK)
        os.chmod(work, new_directory_mode())  # mkdtemp made it 0700; the result is a directory like mkdir's
        os.rename(work, target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    finally:
        lock.close()
    return summary


def _work_prefix(target: Path) -> str:
    """``DIR.incomplete-``, with DIR cut so that the work directory's name fits NAME_MAX."""
    room = NAME_MAX - len(INCOMPLETE) - 8  # mkdtemp adds 8 characters
    return target.name.encode()[:room].decode(errors="ignore") + INCOMPLETE


def _remove_leftovers(target: Path) -> None:
    """Remove work directories that killed extractions to ``target`` left behind (see the module docstring)."""
    prefix = _work_prefix(target)
    with os.scandir(target.parent) as entries:
        for entry in entries:
            if not entry.name.startswith(prefix) or not entry.is_dir(follow_symlinks=False):
                continue
            try:
                with open(os.path.join(entry.path, _LOCK), "rb") as lock:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    shutil.rmtree(entry.path)
            except OSError:
                continue  # alive (locked), not ours (no lock file), or already gone
