#!/usr/bin/env python3
"""Regenerate the container fixtures: a qcow2 disk with two internal snapshots made by real ``savevm``.

A paused QEMU 7.2 ``pc-i440fx-7.2`` VM (16 MiB, virtio-net on a user netdev,
virtio-blk on the 32 MiB qcow2 disk itself) runs HMP ``savevm first``, then
``set_link net0 off`` and ``savevm second``: two VM states that differ in
virtio-net's link status.  The image is stored xz-compressed
(``containers/two-snapshots.qcow2.xz``); tests unpack it.

    python3 compat_fixtures/generate_containers.py
"""

from __future__ import annotations

import lzma
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "containers"
ARGV = ["qemu-system-x86_64", "-M", "pc-i440fx-7.2", "-m", "16", "-nodefaults", "-S", "-nographic",
        "-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0,id=net0",
        "-drive", "if=none,id=d0,file={disk},format=qcow2", "-device", "virtio-blk-pci,drive=d0",
        "-monitor", "stdio"]
MONITOR = "savevm first\nset_link net0 off\nsavevm second\ninfo snapshots\nquit\n"


def qemu_argv(disk: Path) -> list[str]:
    """The command line that made (and loads) the snapshots of ``disk``."""
    return [arg.replace("{disk}", str(disk)) for arg in ARGV]


def make(disk: Path) -> None:
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "32M"], check=True)
    out = subprocess.run(qemu_argv(disk), input=MONITOR, capture_output=True, text=True, timeout=120, check=True)
    listed = [line.split()[1] for line in out.stdout.splitlines() if line.startswith("--") and len(line.split()) > 2]
    if listed != ["first", "second"]:
        raise SystemExit(f"savevm did not make the two snapshots: {out.stdout[-500:]}")


def main() -> int:
    OUT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        disk = Path(work) / "two-snapshots.qcow2"
        make(disk)
        (OUT / "two-snapshots.qcow2.xz").write_bytes(lzma.compress(disk.read_bytes(), preset=9))
    print(OUT / "two-snapshots.qcow2.xz", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
