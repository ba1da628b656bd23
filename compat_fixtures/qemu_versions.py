#!/usr/bin/env python3
"""The QEMUs this project checks against: the system's 7.2 and a private 10.0 beside it.

QEMU 7.2 is Debian bookworm's, installed system-wide.  QEMU 10.0 comes from
bookworm-backports: its packages are downloaded with a private apt
configuration (the archive is the one the machine's own sources name) and
unpacked with ``dpkg -x`` under a cache directory, so the system's 7.2 stays.

Two things make the unpacked 10.0 run beside 7.2:

- firmware: ``-L PREFIX/usr/share/qemu -L /usr/share/qemu``;
- modules: QEMU looks for its modules (display devices, audio, ...) in the
  directory it was built for, the system's, which holds 7.2's; loading one
  aborts (``module_load_dso: Assertion QTAILQ_EMPTY(&dso_init_list)``).  So
  10.0 runs in a private mount namespace (``unshare --mount``, root) with the
  prefix's module directory bind-mounted over the system's.

Usage::

    python3 -m compat_fixtures.qemu_versions install 10.0    # prints the prefix
    python3 -m compat_fixtures.qemu_versions run 10.0 qemu-system-x86_64 -M help
    python3 -m compat_fixtures.qemu_versions list
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["BACKPORT_PACKAGES", "Qemu", "QemuMissing", "cache_dir", "install", "qemu", "versions"]

SYSTEM_VERSION = "7.2"
BACKPORT_VERSION = "10.0"
BACKPORT_SUITE = "bookworm-backports"
BACKPORT_PACKAGES = ("qemu-system-x86", "qemu-system-ppc", "qemu-system-arm", "qemu-system-common",
                     "qemu-system-data", "qemu-utils")
SYSTEM_FIRMWARE = Path("/usr/share/qemu")
APT_SOURCES = (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list"))
_STAMP = "installed-version"
_BIND_AND_EXEC = 'mount --bind "$0" "$1" && shift && exec "$@"'


class QemuMissing(RuntimeError):
    """A QEMU version this project needs is not installed; the message says how to install it."""


@dataclass(frozen=True)
class Qemu:
    """One installed QEMU: the system's (``prefix`` None) or one unpacked under ``prefix``."""

    version: str
    prefix: Path | None = None

    def command(self, binary: str) -> list[str]:
        """The argv that runs ``binary`` (``qemu-system-x86_64``, ``qemu-img``, ...) of this QEMU."""
        if self.prefix is None:
            return [binary]
        path = str(self.prefix / "usr" / "bin" / binary)
        firmware = [] if binary.startswith("qemu-img") else ["-L", str(self.prefix / "usr/share/qemu"),
                                                              "-L", str(SYSTEM_FIRMWARE)]
        own, system = _module_dirs(self.prefix)
        if own is None or system is None:
            return [path, *firmware]
        return ["unshare", "--mount", "--", "sh", "-c", _BIND_AND_EXEC, str(own), str(system), path, *firmware]

    def version_line(self, binary: str = "qemu-system-x86_64") -> str:
        """The first line ``binary --version`` prints."""
        out = subprocess.run([*self.command(binary), "--version"], capture_output=True, text=True,
                             check=True, timeout=60)
        return out.stdout.splitlines()[0].strip()


def _module_dirs(prefix: Path) -> tuple[Path | None, Path | None]:
    """(the prefix's module directory, the system's one it must replace), when both exist."""
    own = next(iter(sorted(prefix.glob("usr/lib/*/qemu"))), None)
    if own is None:
        return None, None
    system = Path("/") / own.relative_to(prefix)
    return own, (system if system.is_dir() else None)


def cache_dir() -> Path:
    """Where private QEMUs are unpacked: ``$VMSTATE_QEMU_CACHE``, else ``~/.cache/vmstate-forge/qemu``."""
    explicit = os.environ.get("VMSTATE_QEMU_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "vmstate-forge" / "qemu"


def _prefix(version: str, cache: Path | None = None) -> Path:
    return (cache or cache_dir()) / version


def qemu(version: str, cache: Path | None = None) -> Qemu:
    """The installed QEMU ``version`` (``"7.2"`` or ``"10.0"``); :class:`QemuMissing` if it is not."""
    if version == SYSTEM_VERSION:
        if shutil.which("qemu-system-x86_64") is None:
            raise QemuMissing("QEMU 7.2 is not installed (Debian: apt-get install qemu-system-x86 "
                              "qemu-system-ppc qemu-system-arm qemu-utils)")
        return Qemu(SYSTEM_VERSION)
    if version != BACKPORT_VERSION:
        raise QemuMissing(f"no QEMU {version} is known here (known: {', '.join(versions())})")
    prefix = _prefix(version, cache)
    if not (prefix / _STAMP).is_file():
        raise QemuMissing(f"QEMU {version} is not installed under {prefix} "
                          f"(python3 -m compat_fixtures.qemu_versions install {version})")
    return Qemu(version, prefix)


def versions() -> tuple[str, ...]:
    """The QEMU versions this project knows, oldest first."""
    return (SYSTEM_VERSION, BACKPORT_VERSION)


def archive_uri(sources: tuple[Path, ...] = APT_SOURCES) -> str:
    """The Debian archive URI the machine's own apt sources use for bookworm."""
    for path in sources:
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if path.suffix == ".sources":  # deb822 stanzas
            for stanza in re.split(r"\n\s*\n", text):
                fields = dict(re.findall(r"^([A-Za-z-]+):\s*(.*)$", stanza, re.M))
                if "bookworm" in fields.get("Suites", "").split() and fields.get("URIs"):
                    return fields["URIs"].split()[0]
        else:
            for line in text.splitlines():
                parts = re.sub(r"\[[^\]]*\]", " ", line).split()  # drop "[options]"
                if len(parts) >= 3 and parts[0] == "deb" and parts[2] == "bookworm":
                    return parts[1]
    raise QemuMissing(f"no apt source for Debian bookworm in {', '.join(map(str, sources))}")


def install(version: str = BACKPORT_VERSION, cache: Path | None = None) -> Path:
    """Download and unpack QEMU ``version`` from bookworm-backports; returns the prefix (kept if present)."""
    if version != BACKPORT_VERSION:
        raise QemuMissing(f"only QEMU {BACKPORT_VERSION} is installed privately (asked: {version})")
    prefix = _prefix(version, cache)
    if (prefix / _STAMP).is_file():
        return prefix
    prefix.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=prefix.parent, prefix=f".{version}.incomplete-") as work_name:
        work = Path(work_name)
        apt = _apt_options(work)
        (work / "lists" / "partial").mkdir(parents=True)
        (work / "sources.list").write_text(f"deb {archive_uri()} {BACKPORT_SUITE} main\n", encoding="utf-8")
        subprocess.run(["apt-get", *apt, "-qq", "update"], check=True, timeout=600)
        debs = work / "debs"
        debs.mkdir()
        subprocess.run(["apt-get", *apt, "-qq", "download",
                        *(f"{package}/{BACKPORT_SUITE}" for package in BACKPORT_PACKAGES)],
                       check=True, cwd=debs, timeout=600)
        tree = work / "tree"
        for deb in sorted(debs.glob("*.deb")):
            subprocess.run(["dpkg-deb", "-x", str(deb), str(tree)], check=True, timeout=600)
        unpacked = Qemu(version, tree).version_line()
        if f"version {version}." not in unpacked:
            raise QemuMissing(f"{BACKPORT_SUITE} gave {unpacked!r}, not QEMU {version}")
        (tree / _STAMP).write_text(unpacked + "\n", encoding="utf-8")
        if prefix.exists():
            shutil.rmtree(prefix)
        tree.rename(prefix)
    return prefix


def _apt_options(work: Path) -> list[str]:
    return ["-o", f"Dir::Etc::sourcelist={work / 'sources.list'}", "-o", "Dir::Etc::sourceparts=/dev/null",
            "-o", f"Dir::State::Lists={work / 'lists'}", "-o", f"Dir::Cache::archives={work / 'debs'}",
            "-o", "APT::Sandbox::User=root"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m compat_fixtures.qemu_versions", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("list", help="the known versions and where each is")
    inst = sub.add_parser("install", help="download and unpack a private QEMU (cached)")
    inst.add_argument("version", nargs="?", default=BACKPORT_VERSION)
    run = sub.add_parser("run", help="run a binary of one QEMU version")
    run.add_argument("version")
    run.add_argument("binary")
    run.add_argument("args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    try:
        if args.action == "install":
            print(install(args.version))
        elif args.action == "list":
            for version in versions():
                try:
                    found = qemu(version)
                    print(f"{version}: {found.prefix or 'system'}: {found.version_line()}")
                except QemuMissing as exc:
                    print(f"{version}: {exc}")
        else:
            command = qemu(args.version).command(args.binary)
            os.execvp(command[0], [*command, *args.args])
    except (QemuMissing, subprocess.CalledProcessError, OSError) as exc:
        print(f"qemu_versions: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
