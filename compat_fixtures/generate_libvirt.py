#!/usr/bin/env python3
"""Regenerate the libvirt save images: real ``virsh save`` of a paused domain, in each format libvirt 9.0 writes.

Needs root and Debian's ``libvirt-daemon libvirt-daemon-driver-qemu
libvirt-clients`` (``.ci/run`` installs them).  ``ensure_libvirtd`` does what
the libvirt-daemon-system package's scripts would: the ``libvirt-qemu`` user,
the ``kvm`` and ``libvirt-qemu`` groups, the log and run directories, then
starts ``virtlogd`` and ``libvirtd``.  Each format is chosen with
``save_image_format`` in ``/etc/libvirt/qemu.conf`` (the file is put back as
it was afterwards) and a restart of libvirtd.  The images are stored
xz-compressed in ``compat_fixtures/libvirt/`` (a raw image is mostly zero RAM).

    python3 compat_fixtures/generate_libvirt.py
"""

from __future__ import annotations

import contextlib
import lzma
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "libvirt"
URI = "qemu:///system"
DOMAIN = "vmstate-save-fixture"
QEMU_CONF = Path("/etc/libvirt/qemu.conf")
#: what libvirt 9.0 writes (its zstd and sparse formats came later)
FORMATS = ("raw", "gzip", "bzip2", "xz")
DOMAIN_XML = f"""<domain type='qemu'>
  <name>{DOMAIN}</name>
  <memory unit='MiB'>16</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc-i440fx-7.2'>hvm</type></os>
  <features><acpi/></features>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <interface type='user'><model type='virtio'/></interface>
    <memballoon model='virtio'/>
    <video><model type='none'/></video>
  </devices>
</domain>
"""


def virsh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["virsh", "-c", URI, *args], capture_output=True, text=True, timeout=120, check=check)


def _daemon_up() -> bool:
    return subprocess.run(["virsh", "-c", URI, "version"], capture_output=True, timeout=30).returncode == 0


def ensure_libvirtd(restart: bool = False) -> None:
    """The users, groups and directories libvirt's qemu driver wants, then virtlogd and libvirtd running."""
    for group in ("kvm", "libvirt-qemu", "libvirt"):
        subprocess.run(["groupadd", "-f", group], check=True)
    if subprocess.run(["id", "libvirt-qemu"], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "-r", "-g", "libvirt-qemu", "-G", "kvm", "-d", "/var/lib/libvirt",
                        "-s", "/usr/sbin/nologin", "libvirt-qemu"], check=True)
    for directory in ("/var/log/libvirt/qemu", "/var/run/libvirt", "/var/lib/libvirt/qemu"):
        os.makedirs(directory, exist_ok=True)
    if restart:
        subprocess.run(["pkill", "-x", "libvirtd"], check=False)
        for _ in range(100):
            if subprocess.run(["pgrep", "-x", "libvirtd"], capture_output=True).returncode != 0:
                break
            time.sleep(0.1)
    if subprocess.run(["pgrep", "-x", "virtlogd"], capture_output=True).returncode != 0:
        subprocess.run(["virtlogd", "-d"], check=True)
    if subprocess.run(["pgrep", "-x", "libvirtd"], capture_output=True).returncode != 0:
        subprocess.run(["libvirtd", "-d"], check=True)
    for _ in range(100):
        if _daemon_up():
            return
        time.sleep(0.1)
    raise SystemExit("libvirtd did not come up")


@contextlib.contextmanager
def save_format(name: str) -> Iterator[None]:
    """libvirtd restarted with ``save_image_format = name``; qemu.conf put back afterwards."""
    before = QEMU_CONF.read_bytes() if QEMU_CONF.exists() else None
    QEMU_CONF.parent.mkdir(parents=True, exist_ok=True)
    QEMU_CONF.write_text((before or b"").decode() + f'\nsave_image_format = "{name}"\n', encoding="utf-8")
    try:
        ensure_libvirtd(restart=True)
        yield
    finally:
        if before is None:
            QEMU_CONF.unlink()
        else:
            QEMU_CONF.write_bytes(before)
        ensure_libvirtd(restart=True)


def save_image(target: Path, work: Path) -> None:
    """A paused domain saved into ``target`` by ``virsh save`` (the domain is gone afterwards)."""
    xml = work / "domain.xml"
    xml.write_text(DOMAIN_XML, encoding="utf-8")
    virsh("destroy", DOMAIN, check=False)
    virsh("create", str(xml), "--paused")
    virsh("save", DOMAIN, str(target))


def main() -> int:
    if shutil.which("virsh") is None:
        raise SystemExit("virsh not found (apt-get install --no-install-recommends libvirt-daemon "
                         "libvirt-daemon-driver-qemu libvirt-clients)")
    ensure_libvirtd()
    OUT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as work_name:
        work = Path(work_name)
        os.chmod(work, 0o777)  # libvirt's qemu runs as libvirt-qemu
        for name in FORMATS:
            with save_format(name):
                target = work / f"pc-7.2-{name}.save"
                save_image(target, work)
                (OUT / f"{target.name}.xz").write_bytes(lzma.compress(target.read_bytes(), preset=9))
                print(f"{target.name}: {target.stat().st_size} bytes", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
