"""Replace a file atomically: a crash leaves the old file or the new one, never half of one.

Only a regular file is ever replaced.  A device node, FIFO, socket or
directory at the target is refused (``UnsafeTargetError``): renaming a new
file over ``/dev/sda`` or ``/dev/null`` would replace the node itself.  A
symlink is written through when it names an existing regular file: the
file it names is replaced and the link stays, as ``cp`` and a shell's ``>``
treat links.  A dangling symlink is refused (creating a file wherever a
link points is not clearly meant), and so is a link to anything but a
regular file.  An ``OSError`` while writing (a full disk) names the target.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from vmstate.errors import VMStateError

from .._modes import new_file_mode

__all__ = ["UnsafeTargetError", "atomic_write", "replaceable_target"]


class UnsafeTargetError(VMStateError, FileExistsError):
    """The output path holds something other than a regular file; it is left alone."""


_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"))


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def replaceable_target(path: str | os.PathLike[str]) -> Path:
    """The file an atomic write to ``path`` replaces: ``path``, or the regular file a symlink there names."""
    target = Path(path)
    try:
        mode = os.lstat(target).st_mode
    except FileNotFoundError:
        return target
    if stat.S_ISREG(mode):
        return target
    if not stat.S_ISLNK(mode):
        raise UnsafeTargetError(f"{target}: is {_kind(mode)}, not a regular file; refusing to replace it")
    final = Path(os.path.realpath(target))
    try:
        mode = os.stat(final).st_mode
    except FileNotFoundError:
        raise UnsafeTargetError(f"{target}: a symlink to {final}, which does not exist; refusing to create a file "
                                "through a dangling link") from None
    if not stat.S_ISREG(mode):
        raise UnsafeTargetError(f"{target}: a symlink to {final}, which is {_kind(mode)}; refusing to replace it")
    return final


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _named(error: OSError, path: Path) -> OSError:
    """``error`` with ``path`` as its file name when it has none (ENOSPC from write() names nothing)."""
    if error.filename is None and error.errno is not None:
        return type(error)(error.errno, error.strerror, str(path))
    return error


class _NamedWriter(io.BufferedWriter):
    """A buffered file whose write errors name the target, not an anonymous temporary file."""

    def __init__(self, fd: int, target: Path) -> None:
        super().__init__(os.fdopen(fd, "wb", buffering=0))
        self.target = target

    def write(self, data: bytes) -> int:  # type: ignore[override]
        try:
            return super().write(data)
        except OSError as error:
            raise _named(error, self.target) from None

    def flush(self) -> None:
        try:
            super().flush()
        except OSError as error:
            raise _named(error, self.target) from None

    def close(self) -> None:
        try:
            super().close()  # flushes what a failed write left in the buffer: it may fail again
        except OSError as error:
            raise _named(error, self.target) from None


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Yield a file to write; on success it replaces ``path``, on error it is removed.

    ``path`` must be absent, a regular file, or a symlink to one (see the
    module docstring).  The temporary file lives in the same directory
    (``rename`` is atomic only within one file system) and is fsynced before
    the rename; the directory is fsynced after it, so the new name itself
    survives a power cut.  A process killed mid-write leaves a
    ``.<name>.*.tmp`` file beside ``path`` and ``path`` untouched.  A new
    file gets the mode ``open()`` would give it (0666 less the umask, as
    ``cp`` and a shell's ``>`` do: a QEMU running as another user must be
    able to read a stream written for it; set a umask of 077 to keep guest
    memory private); a replaced file keeps its mode.  The temporary file is
    0600 until the rename.
    """
    target = replaceable_target(path)
    directory = target.parent
    try:
        fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    except OSError as error:
        raise _named(error, target) from None
    try:
        try:
            mode = os.stat(target).st_mode & 0o7777
        except FileNotFoundError:
            mode = new_file_mode()
        os.chmod(fd, mode)
        with _NamedWriter(fd, target) as file:
            yield file  # type: ignore[misc]
            file.flush()
            try:
                os.fsync(file.fileno())
                os.replace(temporary, target)
            except OSError as error:
                raise _named(error, target) from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _fsync_dir(directory)
