"""Build the tiny initramfs of the booted fixtures, with the standard library only.

The archive holds busybox-static, ``/init`` (``init.sh`` next to this file),
the virtio driver modules of a Debian kernel package with every module they
depend on, and ``/modules.list``, the order in which ``/init`` loads them.

* The cpio "newc" format is what the kernel unpacks into its rootfs
  (Linux ``Documentation/driver-api/early-userspace/buffer-format.rst``).
  Writing it here avoids needing the ``cpio`` tool and lets the archive hold
  ``/dev/console`` without root rights.
* Debian's kernel packages ship no ``modules.dep`` (``depmod`` runs when the
  package is installed), so the load order is computed from the
  ``depends=`` entry of each module's ``.modinfo`` ELF section.
"""
from __future__ import annotations

import gzip
import stat
import struct
from dataclasses import dataclass
from pathlib import Path

INIT_SCRIPT = Path(__file__).resolve().parent / "init.sh"


@dataclass(frozen=True)
class Entry:
    """One cpio member: a directory, regular file, symlink or character device."""

    name: str  # path inside the archive, without a leading slash
    mode: int  # st_mode: file type and permission bits
    data: bytes = b""  # file contents, or the target of a symlink
    rdev: tuple[int, int] = (0, 0)  # (major, minor) of a device node


def newc_archive(entries: list[Entry]) -> bytes:
    """Serialise ``entries`` as a cpio "newc" archive ending with its trailer.

    Timestamps, owners and inode numbers are fixed so that the same inputs
    give the same bytes.
    """
    out = bytearray()

    def member(ino: int, entry: Entry) -> None:
        name = entry.name.encode() + b"\x00"
        fields = (ino, entry.mode, 0, 0, 2 if stat.S_ISDIR(entry.mode) else 1, 0,
                  len(entry.data), 0, 0, entry.rdev[0], entry.rdev[1], len(name), 0)
        out.extend(b"070701" + "".join(f"{v:08x}" for v in fields).encode())
        out.extend(name)
        out.extend(b"\x00" * (-len(out) % 4))  # header + name padded to 4 bytes
        out.extend(entry.data)
        out.extend(b"\x00" * (-len(out) % 4))

    for ino, entry in enumerate(entries, start=1):
        member(ino, entry)
    member(0, Entry("TRAILER!!!", 0))
    return bytes(out)


def modinfo(ko: bytes) -> dict[str, str]:
    """The ``key=value`` strings of a kernel module's ``.modinfo`` section.

    Handles 64-bit ELF of either byte order (all three Debian targets used
    here are little-endian, but nothing depends on it).
    """
    if ko[:4] != b"\x7fELF" or ko[4] != 2:
        raise ValueError("not a 64-bit ELF file")
    end = "<" if ko[5] == 1 else ">"
    shoff, = struct.unpack_from(end + "Q", ko, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from(end + "HHH", ko, 0x3A)

    def section(i: int) -> tuple[int, int, int]:
        name, _type, _flags, _addr, offset, size = struct.unpack_from(
            end + "IIQQQQ", ko, shoff + i * shentsize)
        return name, offset, size

    _, str_off, _ = section(shstrndx)
    for i in range(shnum):
        name_off, offset, size = section(i)
        name = ko[str_off + name_off:ko.index(b"\x00", str_off + name_off)]
        if name == b".modinfo":
            pairs = (s.split(b"=", 1) for s in ko[offset:offset + size].split(b"\x00") if b"=" in s)
            return {k.decode(): v.decode(errors="replace") for k, v in pairs}
    return {}


def module_index(modules_dir: Path) -> dict[str, Path]:
    """Map module names (``-`` spelt ``_``, as the kernel does) to their ``.ko`` files."""
    return {ko.stem.replace("-", "_"): ko for ko in sorted(modules_dir.rglob("*.ko"))}


def load_order(wanted: list[str], index: dict[str, Path]) -> list[Path]:
    """The ``.ko`` files of ``wanted`` and their dependencies, dependencies first.

    A wanted module that is not in ``index`` is assumed built into the kernel
    (e.g. ``virtio_mmio`` on arm64) and skipped; a missing *dependency* is an
    error, because ``depends=`` only names modular dependencies.
    """
    order: list[Path] = []
    seen: set[str] = set()

    def visit(name: str, required: bool) -> None:
        name = name.replace("-", "_")
        if name in seen:
            return
        seen.add(name)
        if name not in index:
            if required:
                raise FileNotFoundError(f"kernel module {name} not found")
            return
        ko = index[name]
        for dep in filter(None, modinfo(ko.read_bytes()).get("depends", "").split(",")):
            visit(dep, True)
        order.append(ko)

    for name in wanted:
        visit(name, False)
    return order


def build(busybox: Path, modules_dir: Path, wanted: list[str]) -> bytes:
    """A gzip-compressed initramfs: busybox, ``/init`` and the ``wanted`` modules.

    ``modules_dir`` is ``lib/modules/<version>`` of the unpacked kernel package.
    """
    kos = load_order(wanted, module_index(modules_dir))
    dirs = ["bin", "dev", "proc", "sys", "tmp", "lib", "lib/modules"]
    entries = [Entry(d, stat.S_IFDIR | 0o755) for d in dirs]
    entries += [
        # The kernel opens /dev/console for init's stdio before /init can
        # mount devtmpfs, so the node must be in the archive itself.
        Entry("dev/console", stat.S_IFCHR | 0o600, rdev=(5, 1)),
        Entry("bin/busybox", stat.S_IFREG | 0o755, busybox.read_bytes()),
        Entry("bin/sh", stat.S_IFLNK | 0o777, b"busybox"),
        Entry("init", stat.S_IFREG | 0o755, INIT_SCRIPT.read_bytes()),
        Entry("modules.list", stat.S_IFREG | 0o644,
              "".join(f"{ko.name}\n" for ko in kos).encode()),
    ]
    entries += [Entry(f"lib/modules/{ko.name}", stat.S_IFREG | 0o644, ko.read_bytes())
                for ko in kos]
    # mtime=0: the same inputs give the same initramfs bytes.
    return gzip.compress(newc_archive(entries), compresslevel=9, mtime=0)
