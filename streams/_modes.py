"""The modes of the files and directories we create: what ``open()`` and ``mkdir`` would give them."""

from __future__ import annotations

import os

__all__ = ["current_umask", "new_file_mode", "new_directory_mode"]


def current_umask() -> int:
    """The process's umask (read from /proc where it can be, so no other thread sees it changed)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def new_file_mode() -> int:
    """0666 less the umask."""
    return 0o666 & ~current_umask()


def new_directory_mode() -> int:
    """0777 less the umask."""
    return 0o777 & ~current_umask()
