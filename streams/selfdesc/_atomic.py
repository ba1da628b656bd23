"""Replace a file atomically: a crash leaves the old file or the new one, never half of one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_write"]


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Yield a file to write; on success it replaces ``path``, on error it is removed.

    The temporary file lives in the same directory (``rename`` is atomic only
    within one file system) and is fsynced before the rename; the directory
    is fsynced after it, so the new name itself survives a power cut.  A
    process killed mid-write leaves a ``.<name>.*.tmp`` file beside ``path``
    and ``path`` untouched.  A new file is private (mode 0600, as mkstemp
    makes it: snapshots hold guest memory); a replaced file keeps its mode.
    """
    target = Path(path)
    directory = target.parent
    fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        with contextlib.suppress(FileNotFoundError):
            os.chmod(fd, os.stat(target).st_mode & 0o7777)
        with os.fdopen(fd, "wb") as file:
            yield file  # type: ignore[misc]
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _fsync_dir(directory)
