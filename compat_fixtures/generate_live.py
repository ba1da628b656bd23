#!/usr/bin/env python3
"""Regenerate the real QEMU 7.2 and 10.0 migration streams that carry live virtio state.

The paused-VM corpus of ``generate.py`` only shows virtio devices as they are
after reset.  These fixtures let a guest drive the devices first:

* ``*-booted-*``: a Debian kernel boots a tiny initramfs (busybox-static and
  the virtio driver modules of the kernel package) whose ``/init``
  (``guest/init.sh``) touches every device and prints a marker on the
  console.  Once the marker is seen the VM is stopped and migrated, so the
  stream carries negotiated features, placed rings and moved ring indices.
* ``virt-7.2-bare-*-mmio``: a bare-metal AArch64 program
  (``guest/aarch64_bare.py``) resets every virtio-mmio device from the vCPU,
  with SCTLR_EL1.EE set (``be``) or clear (``le``, the control), so that the
  ``be`` stream carries ``virtio/device_endian`` = 2 (BIG) in every device.

Each stream is checked (layout, expected virtio subsections, QEMU loads it back
with ``-incoming``) and written xz-compressed as ``NAME.mig.xz``; a manifest
records the exact QEMU argv, the guest packages and the checks' results.

Needs Debian's ``qemu-system-x86 qemu-system-ppc qemu-system-arm`` (7.2), QEMU 10.0
for the ``*-10.0-*`` streams (``python3 -m compat_fixtures.qemu_versions install 10.0``) and
apt with the ``ppc64el`` and ``arm64`` architectures enabled (the kernel and
busybox packages are fetched with ``apt-get download``; nothing is installed)::

    dpkg --add-architecture ppc64el && dpkg --add-architecture arm64 && apt-get update

Usage::

    python3 compat_fixtures/generate_live.py                  # every stream
    python3 compat_fixtures/generate_live.py --only virt-7.2-bare-be-mmio
    python3 compat_fixtures/generate_live.py --list
    python3 compat_fixtures/generate_live.py --qemu 10.0 --only pc-10.0-booted-virtio-legacy
    python3 compat_fixtures/generate_live.py --out /tmp/live --keep-raw
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import lzma
import re
import shlex
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from generate import FixtureError, check_stream, qemu_command, qemu_version, vmdesc_span
from guest import aarch64_bare, initramfs

X86 = "qemu-system-x86_64"
PPC64 = "qemu-system-ppc64"
AARCH64 = "qemu-system-aarch64"

WORK = "@WORK@"  # placeholder: per-run directory (kernel, initrd, disks, sockets, logs)
MARKER = b"VMSTATE-FORGE-READY"  # printed by guest/init.sh when every device was used
# Lines guest/init.sh prints once it used each device; all must be on the console.
GUEST_DID = ("read /dev/vda", "read /dev/sda", "wrote /dev/vport", "read /dev/hwrng",
             "eth0 up")
BARE_SETTLE_S = 2.0  # the bare program needs microseconds; leave it ample time
QMP_TIMEOUT_S = 120
XZ_PRESET = 9

# Savevm names of the six virtio devices' sections (idstr suffixes).
VIRTIO_SECTIONS = ("virtio-net", "virtio-blk", "virtio-console", "virtio-balloon",
                   "virtio-rng", "virtio-scsi")
# A subsection header: 0x05, name length, "parent/child" name, be32 version.
SUBSECTION_NAME = re.compile(rb"[a-z0-9_-]+/[a-z0-9_/-]+")

# panic=1 with -no-reboot: a guest panic ends QEMU at once instead of hanging
# until the timeout.  nokaslr: the kernel lands at the same address every run.
# init_on_free=1: the kernel zeroes the pages it frees (boot-time memory, the
# initramfs archive, ...); a zero page costs a few bytes in a stream, stale
# data 4 KiB (x86: 10.7 instead of 15.6 MB xz).  Side effect: the balloon
# driver then negotiates VIRTIO_BALLOON_F_PAGE_POISON (poison value 0), so the
# balloon section carries the virtio-balloon-device/page-poison subsection.
KERNEL_ARGS = "panic=1 nokaslr init_on_free=1"

PCI_MODES = {"legacy": ",disable-modern=on", "modern": ",disable-legacy=on"}
#: QEMU 10.0's own machine type for each 7.2 alias the 7.2 fixtures use
TEN_MACHINES = {"pc": "pc-i440fx-10.0", "pseries": "pseries-10.0", "virt": "virt-10.0"}
PSERIES_SMALL_DMA = ("-global", "spapr-pci-host-bridge.dma_win_size=0x1000000")


@dataclass(frozen=True)
class Guest:
    """A Debian architecture whose kernel and busybox-static the booted fixtures use."""

    deb_arch: str
    kernel_meta: str  # metapackage that depends on the current kernel package
    kernel_glob: str  # the bootable image inside the kernel package
    console: str  # kernel console device for the machine's first serial port
    modules: tuple[str, ...]  # wanted driver modules (dependencies are added)


DRIVERS = ("virtio_net", "virtio_blk", "virtio_console", "virtio_balloon", "virtio_rng",
           "virtio_scsi", "sd_mod")
GUESTS = {
    "amd64": Guest("amd64", "linux-image-amd64", "boot/vmlinuz-*", "ttyS0",
                   ("virtio_pci",) + DRIVERS),
    # spapr-vty is the first -serial on pseries; Linux names it hvc0.
    "ppc64el": Guest("ppc64el", "linux-image-powerpc64le", "boot/vmlinux-*", "hvc0",
                     ("virtio_pci",) + DRIVERS),
    "arm64": Guest("arm64", "linux-image-arm64", "boot/vmlinuz-*", "ttyAMA0",
                   ("virtio_mmio",) + DRIVERS),
}


@dataclass(frozen=True)
class LiveFixture:
    """One stream: how to start the VM, what drives it, what the stream must show."""

    name: str
    binary: str
    machine: str
    memory_mib: int
    machine_args: tuple[str, ...]  # -cpu, -global ...
    transport: str  # "pci" or "device" (virtio-mmio)
    pci_mode: str  # key of PCI_MODES, or "" for virtio-mmio
    description: str
    guest: str | None = None  # key of GUESTS for a booted Linux guest
    bare_big_endian: bool | None = None  # bare-metal AArch64 program instead
    endian: int | None = None  # expected virtio/device_endian value; None: absent
    features: bool = True  # guest features must be negotiated (nonzero)
    # virtio-net on a 4-queue tap backend (needs /dev/net/tun, root) with mq=on, and 2 vCPUs:
    # the guest negotiates VIRTIO_NET_F_MQ and uses 2 of the 4 queue pairs
    multiqueue_net: bool = False
    qemu: str = "7.2"  # the QEMU version that runs it (compat_fixtures.qemu_versions)

    def argv(self) -> list[str]:
        """The QEMU command line (argv[0] the binary's name); paths are under the WORK placeholder.

        TCG even where KVM is available, so the stream does not depend on the
        host (KVM adds sections such as kvmclock).  ``-no-reboot``: a guest
        reset or panic ends QEMU, which the marker wait reports at once.
        """
        argv = [self.binary, "-M", self.machine, *self.machine_args, "-accel", "tcg",
                "-nodefaults", "-display", "none", "-no-reboot", "-m", str(self.memory_mib),
                "-kernel", f"{WORK}/kernel"]
        if self.guest is not None:
            console = GUESTS[self.guest].console
            argv += ["-initrd", f"{WORK}/initrd.img",
                     "-append", f"console={console} {KERNEL_ARGS}"]
        devices = virtio_devices(self.transport, self.pci_mode)
        if self.multiqueue_net:
            opt = PCI_MODES[self.pci_mode] if self.transport == "pci" else ""
            at = devices.index(f"virtio-net-{self.transport}{opt}")
            devices[at] += ",netdev=n0,mq=on,vectors=10"
            argv += ["-smp", "2", "-netdev", "tap,id=n0,queues=4,script=no,downscript=no"]
        argv += devices
        argv += ["-serial", f"file:{WORK}/console.log",
                 "-qmp", f"unix:{WORK}/qmp.sock,server=on,wait=off"]
        return argv


def virtio_devices(transport: str, mode: str) -> list[str]:
    """Options for the six virtio devices (net, blk, serial+port, balloon, rng, scsi+disk).

    The serial port's host side is a *file* chardev: with a null chardev the
    port never reports the host side connected, and the guest's write blocks
    forever (observed with QEMU 7.2 and the Debian 6.1 kernel).
    """
    opt = PCI_MODES[mode] if transport == "pci" else ""
    return [
        "-device", f"virtio-net-{transport}{opt}",
        "-drive", f"if=none,id=blk0,format=raw,file={WORK}/blk0.img",
        "-device", f"virtio-blk-{transport},drive=blk0{opt}",
        "-chardev", f"file,id=vser0c,path={WORK}/vport0.out",
        "-device", f"virtio-serial-{transport},id=vser0{opt}",
        "-device", "virtserialport,bus=vser0.0,name=org.test.0,chardev=vser0c",
        "-device", f"virtio-balloon-{transport}{opt}",
        "-device", f"virtio-rng-{transport}{opt}",
        "-drive", f"if=none,id=scsi0d,format=raw,file={WORK}/scsi0.img",
        "-device", f"virtio-scsi-{transport},id=scsi0{opt}",
        "-device", "scsi-hd,bus=scsi0.0,drive=scsi0d",
    ]


def corpus() -> list[LiveFixture]:
    """The live fixtures, in manifest order: QEMU 7.2's, then the same guests under QEMU 10.0."""
    seven_two = seven_two_corpus()
    return seven_two + ten_corpus(seven_two)


def seven_two_corpus() -> list[LiveFixture]:
    """QEMU 7.2's live fixtures."""
    pseries = ("-cpu", "power9") + PSERIES_SMALL_DMA
    arm = ("-cpu", "cortex-a57")
    mmio_v2 = ("-global", "virtio-mmio.force-legacy=false")
    six = "net, blk, serial+port, balloon, rng, scsi+disk"
    # Memory: the least that boots, with a margin.  x86 panics at 80 MiB and
    # arm64 runs out of memory loading modules at 64 MiB; 96 MiB boots both.
    # pseries 7.2 wants a multiple of 256 MiB.  Free pages are zero (see
    # KERNEL_ARGS), so more RAM barely grows a stream; the kernel image is
    # most of it.
    return [
        LiveFixture("pc-7.2-booted-virtio-legacy", X86, "pc", 96, (), "pci", "legacy",
                    f"x86_64 pc (7.2), Debian amd64 kernel booted, {six}, legacy virtio-pci",
                    guest="amd64"),
        LiveFixture("pc-7.2-booted-virtio-modern", X86, "pc", 96, (), "pci", "modern",
                    f"x86_64 pc (7.2), Debian amd64 kernel booted, {six}, modern virtio-pci",
                    guest="amd64"),
        # The seed's scenario: a little-endian guest on a big-endian target.
        # Legacy devices: the guest's own reset records LITTLE, which differs
        # from qemu-system-ppc64's default (BIG), so device_endian is written.
        LiveFixture("pc-7.2-booted-multiqueue", X86, "pc", 96, (), "pci", "modern",
                    f"x86_64 pc (7.2), 2 vCPUs, Debian amd64 kernel booted, {six}, modern virtio-pci; "
                    "virtio-net mq=on on a 4-queue tap backend: the guest negotiates MQ "
                    "(9 queues on the wire, curr_queue_pairs 2)", guest="amd64", multiqueue_net=True),
        LiveFixture("pseries-7.2-booted-ppc64le-legacy", PPC64, "pseries", 256, pseries, "pci",
                    "legacy", f"ppc64 pseries (7.2) power9, Debian ppc64el kernel booted "
                    f"(little-endian guest), {six}, legacy virtio-pci", guest="ppc64el", endian=1),
        # VERSION_1 negotiated: QEMU writes device_endian only when it is not LITTLE.
        LiveFixture("pseries-7.2-booted-ppc64le-modern", PPC64, "pseries", 256, pseries, "pci",
                    "modern", f"ppc64 pseries (7.2) power9, Debian ppc64el kernel booted "
                    f"(little-endian guest), {six}, modern virtio-pci", guest="ppc64el"),
        LiveFixture("virt-7.2-booted-mmio-legacy", AARCH64, "virt", 96, arm, "device", "",
                    f"aarch64 virt (7.2) cortex-a57, Debian arm64 kernel booted, {six} on "
                    "virtio-mmio (legacy, version 1)", guest="arm64"),
        LiveFixture("virt-7.2-booted-mmio-v2", AARCH64, "virt", 96, arm + mmio_v2, "device", "",
                    f"aarch64 virt (7.2) cortex-a57, Debian arm64 kernel booted, {six} on "
                    "virtio-mmio version 2 (force-legacy=false)", guest="arm64"),
        LiveFixture("virt-7.2-bare-be-mmio", AARCH64, "virt", 16, arm, "device", "",
                    f"aarch64 virt (7.2) cortex-a57, bare-metal program sets SCTLR_EL1.EE and "
                    f"resets every virtio-mmio device from the vCPU: {six}, all device_endian BIG",
                    bare_big_endian=True, endian=2, features=False),
        LiveFixture("virt-7.2-bare-le-mmio", AARCH64, "virt", 16, arm, "device", "",
                    f"aarch64 virt (7.2) cortex-a57, control for bare-be: the same program with "
                    f"SCTLR_EL1.EE clear, {six}, device_endian absent",
                    bare_big_endian=False, features=False),
    ]


def ten_corpus(seven_two: list[LiveFixture]) -> list[LiveFixture]:
    """The same guests under QEMU 10.0 on its own machine types (``pc-10.0-*`` runs pc-i440fx-10.0)."""
    ten = []
    for fx in seven_two:
        machine = TEN_MACHINES[fx.machine]
        description = fx.description.replace(f"{fx.machine} (7.2)", f"{machine} (QEMU 10.0)")
        ten.append(dataclasses.replace(fx, name=fx.name.replace("-7.2-", "-10.0-"), machine=machine,
                                       description=description, qemu="10.0"))
    return ten


# --------------------------------------------------------------------------
# Guest inputs: Debian packages (cached), initramfs, bare-metal ELF


def run_tool(argv: list[str], cwd: Path | None = None) -> str:
    """Run a helper tool, return its stdout; one clear error if it fails."""
    proc = subprocess.run(argv, check=False, capture_output=True, text=True, cwd=cwd)
    if proc.returncode != 0:
        raise FixtureError(f"{shlex.join(argv)} failed: {proc.stderr.strip()[-500:]}")
    return str(proc.stdout)


def require_arch(deb_arch: str) -> None:
    """Fail with the fix unless dpkg knows ``deb_arch`` (apt can then fetch its packages)."""
    known = (run_tool(["dpkg", "--print-architecture"]).split()
             + run_tool(["dpkg", "--print-foreign-architectures"]).split())
    if deb_arch not in known:
        raise FixtureError(f"apt cannot fetch {deb_arch} packages; run: dpkg --add-architecture "
                           f"{deb_arch} && apt-get update")


def kernel_package(meta: str, deb_arch: str) -> str:
    """The versioned kernel package (``linux-image-6.1.0-N-<flavour>``) ``meta`` depends on."""
    for line in run_tool(["apt-cache", "depends", f"{meta}:{deb_arch}"]).splitlines():
        kind, _, dep = line.strip().partition(": ")
        if kind == "Depends" and dep.startswith("linux-image-"):
            return dep.split(":")[0]
    raise FixtureError(f"cannot resolve {meta}:{deb_arch} to a kernel package")


def fetch_deb(package: str, deb_arch: str, cache: Path) -> Path:
    """The cached ``.deb`` of ``package``, downloaded with ``apt-get download`` if absent."""
    debs = cache / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    found = sorted(debs.glob(f"{package}_*_{deb_arch}.deb"))
    if not found:
        run_tool(["apt-get", "download", f"{package}:{deb_arch}"], cwd=debs)
        found = sorted(debs.glob(f"{package}_*_{deb_arch}.deb"))
    if not found:
        raise FixtureError(f"apt-get download {package}:{deb_arch} produced no .deb")
    return found[-1]


def unpack(deb: Path, cache: Path) -> Path:
    """The directory ``deb`` is unpacked into (``dpkg-deb -x``; done once)."""
    dest = cache / "unpacked" / deb.stem
    if not dest.exists():
        part = dest.with_name(dest.name + ".part")
        shutil.rmtree(part, ignore_errors=True)
        part.mkdir(parents=True)
        run_tool(["dpkg-deb", "-x", str(deb), str(part)])
        part.rename(dest)
    return dest


@dataclass
class GuestFiles:
    """What a booted fixture needs from its guest architecture."""

    kernel: Path
    initrd: bytes
    packages: dict[str, str] = field(default_factory=dict)  # Debian package -> version


def prepare_guest(guest: Guest, cache: Path) -> GuestFiles:
    """Fetch and unpack the kernel and busybox-static of ``guest``; build its initramfs."""
    require_arch(guest.deb_arch)
    packages = {}
    roots = []
    for pkg in (kernel_package(guest.kernel_meta, guest.deb_arch), "busybox-static"):
        deb = fetch_deb(pkg, guest.deb_arch, cache)
        packages[pkg] = run_tool(["dpkg-deb", "-f", str(deb), "Version"]).strip()
        roots.append(unpack(deb, cache))
    kernel_root, busybox_root = roots
    kernels = sorted(kernel_root.glob(guest.kernel_glob))
    module_dirs = sorted((kernel_root / "lib" / "modules").iterdir())
    if len(kernels) != 1 or len(module_dirs) != 1:
        raise FixtureError(f"unexpected kernel package layout in {kernel_root}")
    initrd = initramfs.build(busybox_root / "bin" / "busybox", module_dirs[0],
                             list(guest.modules))
    return GuestFiles(kernels[0], initrd, packages)


def populate_work(fx: LiveFixture, work: Path, guest_files: GuestFiles | None) -> None:
    """Put the kernel (or bare ELF), initramfs and 1 MiB zeroed disk images in ``work``."""
    for name in ("blk0.img", "scsi0.img"):
        with open(work / name, "wb") as img:
            img.truncate(1 << 20)
    if guest_files is not None:
        (work / "kernel").symlink_to(guest_files.kernel)
        (work / "initrd.img").write_bytes(guest_files.initrd)
    else:
        (work / "kernel").write_bytes(aarch64_bare.elf(bool(fx.bare_big_endian)))


# --------------------------------------------------------------------------
# Driving QEMU over QMP


class Qmp:
    """A minimal QMP client over a UNIX socket (JSON lines; events are skipped)."""

    def __init__(self, path: Path, proc: subprocess.Popen[bytes], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:  # QEMU creates the socket shortly after it starts
            if proc.poll() is not None:
                raise FixtureError(f"QEMU exited (rc={proc.returncode}) before QMP was up")
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(str(path))
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise FixtureError("timeout waiting for the QMP socket") from None
                time.sleep(0.05)
        self.sock.settimeout(timeout)
        self.reader = self.sock.makefile("rb")
        self._read()  # greeting
        self.execute("qmp_capabilities")

    def _read(self) -> dict[str, Any]:
        try:
            line = self.reader.readline()
        except OSError as exc:  # e.g. QEMU exited after a failed incoming load
            raise FixtureError(f"QMP connection lost: {exc}") from exc
        if not line:
            raise FixtureError("QMP connection closed")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def execute(self, command: str, arguments: dict[str, object] | None = None) -> Any:
        """Run ``command``; return its result or raise FixtureError with QEMU's message."""
        msg: dict[str, object] = {"execute": command}
        if arguments:
            msg["arguments"] = arguments
        try:
            self.sock.sendall(json.dumps(msg).encode() + b"\n")
        except OSError as exc:
            raise FixtureError(f"QMP connection lost: {exc}") from exc
        while True:
            reply = self._read()
            if "event" in reply:
                continue
            if "error" in reply:
                raise FixtureError(f"QMP {command}: {reply['error']}")
            return reply.get("return")

    def quit(self) -> None:
        """Ask QEMU to exit; the connection closing is expected."""
        try:
            self.execute("quit")
        except (FixtureError, OSError):
            pass
        self.sock.close()


def start_qemu(argv: list[str], work: Path, log_name: str) -> subprocess.Popen[bytes]:
    """Start QEMU with stdout/stderr in ``work/log_name``."""
    (work / "qmp.sock").unlink(missing_ok=True)
    with open(work / log_name, "wb") as log:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log)


def stop_qemu(proc: subprocess.Popen[bytes]) -> None:
    """Make sure the QEMU we started is gone (after ``quit`` it exits at once)."""
    try:
        proc.wait(timeout=3)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def tail(path: Path, lines: int = 8) -> str:
    """The last lines of a log file, for error messages."""
    if not path.exists():
        return "(no output)"
    text = path.read_bytes().decode(errors="replace").strip().splitlines()
    return " | ".join(text[-lines:])


def wait_for_marker(console: Path, proc: subprocess.Popen[bytes], timeout: float) -> float:
    """Wait until the guest printed MARKER on the console; return the seconds waited."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if console.exists() and MARKER in console.read_bytes():
            return time.monotonic() - start
        if proc.poll() is not None:
            raise FixtureError(f"QEMU exited (rc={proc.returncode}) before the marker; "
                               f"console: {tail(console)}")
        time.sleep(0.2)
    raise FixtureError(f"no {MARKER.decode()} on the console after {timeout:.0f}s; "
                       f"console: {tail(console)}")


def wait_migration(qmp: Qmp, timeout: float) -> str:
    """Poll ``query-migrate`` until the migration ends; return its final status."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = str(qmp.execute("query-migrate").get("status", ""))
        if status in ("completed", "failed", "cancelled"):
            return status
        time.sleep(0.1)
    raise FixtureError("timeout waiting for the migration to finish")


def save_stream(fx: LiveFixture, argv: list[str], work: Path, target: Path,
                timeout: float) -> float:
    """Boot (or run) the VM, wait until the guest is done, stop and migrate to ``target``.

    Returns the seconds the guest needed to reach its marker.
    """
    if any(c in str(target) for c in "\"\\'"):
        raise FixtureError(f"output path must not contain quotes or backslashes: {target}")
    proc = start_qemu(argv, work, "qemu-source.log")
    try:
        qmp = Qmp(work / "qmp.sock", proc, QMP_TIMEOUT_S)
        if fx.guest is not None:
            ready = wait_for_marker(work / "console.log", proc, timeout)
        else:
            time.sleep(BARE_SETTLE_S)
            ready = BARE_SETTLE_S
        qmp.execute("stop")
        qmp.execute("migrate", {"uri": f"exec:cat > {shlex.quote(str(target))}"})
        status = wait_migration(qmp, QMP_TIMEOUT_S)
        qmp.quit()
        if status != "completed":
            raise FixtureError(f"migration {status}: {tail(work / 'qemu-source.log')}")
        return ready
    finally:
        stop_qemu(proc)


def reload_stream(argv: list[str], work: Path, stream: Path) -> dict[str, str]:
    """Start the same VM with ``-incoming exec:cat STREAM``; return QEMU's verdict."""
    log = work / "qemu-incoming.log"
    proc = start_qemu(argv + ["-incoming", f"exec:cat {shlex.quote(str(stream))}"],
                      work, log.name)
    try:
        qmp = Qmp(work / "qmp.sock", proc, QMP_TIMEOUT_S)
        status = wait_migration(qmp, QMP_TIMEOUT_S)
        runstate = str(qmp.execute("query-status")["status"])
        qmp.quit()
    except FixtureError as exc:  # QEMU exits when an incoming load fails
        raise FixtureError(f"QEMU did not load the stream back: {exc}: {tail(log)}") from exc
    finally:
        stop_qemu(proc)
    if status != "completed":
        raise FixtureError(f"QEMU did not load the stream back ({status}): {tail(log)}")
    return {"migration": status, "runstate": runstate}


# --------------------------------------------------------------------------
# Checking what the stream says about the virtio devices


def virtio_sections(data: bytes) -> list[tuple[str, bytes]]:
    """(idstr, payload) of every virtio device section, located via the vmdesc trailer.

    The vmdesc gives each section's idstr, instance, version and payload size;
    the payload must be followed by the section footer (0x7e, section id).
    Device sections follow the RAM, so the header is searched from the end:
    guest RAM cannot shadow it.
    """
    span = vmdesc_span(data)
    if span is None:
        raise FixtureError("stream has no vmdesc trailer")
    found = []
    for dev in json.loads(data[span[0]:])["devices"]:
        if dev["vmsd_name"] not in VIRTIO_SECTIONS:
            continue
        idstr = dev["name"].encode()
        header = (bytes([len(idstr)]) + idstr
                  + struct.pack(">II", dev["instance_id"], dev["version"]))
        pos = data.rfind(header, 0, span[0])
        if pos < 5 or data[pos - 5] != 0x04:  # QEMU_VM_SECTION_FULL
            raise FixtureError(f"section {dev['name']} not found")
        section_id = data[pos - 4:pos]
        start = pos + len(header)
        end = start + sum(f["size"] for f in dev["fields"])
        if data[end:end + 5] != b"\x7e" + section_id:
            raise FixtureError(f"section {dev['name']}: payload does not end at its footer")
        found.append((dev["name"], data[start:end]))
    return found


def subsections(payload: bytes) -> dict[str, int]:
    """Subsection names in a section payload -> offset just past their header.

    Found by their header shape (0x05, length, ``parent/child`` name, be32
    version 1); this includes nested ones such as ``virtio_pci/modern_state``
    inside ``virtio/extra_state``.  Good enough for a report on payloads of a
    few KiB, not a decoder.
    """
    found: dict[str, int] = {}
    for match in re.finditer(b"\x05", payload):
        start = match.start() + 2
        end = start + payload[start - 1] if start - 1 < len(payload) else start
        if (SUBSECTION_NAME.fullmatch(payload[start:end])
                and payload[end:end + 4] == b"\x00\x00\x00\x01"):
            found.setdefault(payload[start:end].decode(), end + 4)
    return found


def msix_vectors(config: bytes) -> int:
    """MSI-X table size from a PCI config space's capability list (0: no MSI-X)."""
    if not config[0x06] & 0x10:  # status register: capability list present
        return 0
    pos, seen = config[0x34] & 0xFC, set()
    while pos and pos not in seen:
        seen.add(pos)
        if config[pos] == 0x11:  # MSI-X: message control bits 10:0 = table size - 1
            return (int.from_bytes(config[pos + 2:pos + 4], "little") & 0x7FF) + 1
        pos = config[pos + 1] & 0xFC
    return 0


@dataclass(frozen=True)
class CommonPart:
    """What the report needs from virtio_save()'s common part."""

    status: int  # virtio device status byte (bit 2 = DRIVER_OK)
    features_low: int  # low 32 bits of the negotiated guest features
    queues: int
    rings: dict[int, int]  # queue index -> last_avail_idx, for queues with a ring placed


def common_part(payload: bytes, transport: str) -> CommonPart:
    """Walk the transport state and common part at the start of a virtio section.

    Layout (docs: virtio-migration-format.md §1): the transport's save_config
    (virtio-pci: be32 PCIDevice version, 256-byte config space, 4 be32 irq
    levels, then MSI-X table, PBA and be16 config vector if MSI-X is present;
    virtio-mmio: three be32 selectors), then u8 status, u8 isr, be16
    queue_sel, be32 guest features, be32 config_len + config, be32 queue
    count, and per queue: be32 num, be32 align (virtio-mmio only), be64 desc,
    be16 last_avail_idx, be16 vector (MSI-X only).
    """
    vectors = 0
    if transport == "pci":
        vectors = msix_vectors(payload[4:260])
        pos = 4 + 256 + 16 + (vectors * 16 + (vectors + 7) // 8 + 2 if vectors else 0)
    else:
        pos = 12
    status, _isr, _sel, features, config_len = struct.unpack_from(">BBHII", payload, pos)
    pos += 12 + config_len
    count = int(struct.unpack_from(">I", payload, pos)[0])
    pos += 4
    rings = {}
    for index in range(count):
        pos += 8 if transport == "device" else 4  # num (and vring.align on virtio-mmio)
        desc, last_avail = struct.unpack_from(">QH", payload, pos)
        pos += 10 + (2 if vectors else 0)
        if desc:
            rings[index] = last_avail
    return CommonPart(status, features, count, rings)


def describe_virtio(payload: bytes, transport: str) -> dict[str, object]:
    """Status, rings, virtio subsections, device_endian and guest features of one section.

    The full guest features come from ``virtio/64bit_features`` (be64), which
    QEMU 7.2 writes for every device because the default ``queue_reset``
    property puts a bit above 31 in the *host* features.  Their low half must
    equal the common part's: that cross-checks the walk in :func:`common_part`.
    """
    common = common_part(payload, transport)
    present = subsections(payload)
    features = common.features_low
    at = present.get("virtio/64bit_features")
    if at is not None:
        features = struct.unpack_from(">Q", payload, at)[0]
        if features & 0xFFFFFFFF != common.features_low:
            raise FixtureError(f"guest features disagree: common part {common.features_low:#x}, "
                               f"virtio/64bit_features {features:#x}")
    at = present.get("virtio/device_endian")
    return {
        "status": common.status,
        "guest_features": f"{features:#x}",
        "queues": common.queues,
        "rings_placed": len(common.rings),
        "last_avail_idx": {str(q): idx for q, idx in common.rings.items() if idx},
        "subsections": list(present),
        "device_endian": None if at is None else payload[at],
    }


def check_virtio(fx: LiveFixture, data: bytes) -> dict[str, dict[str, object]]:
    """Describe every virtio section; raise unless it is what ``fx`` promises.

    Promised: device_endian as ``fx.endian`` (None: subsection absent), and for
    a booted guest nonzero guest features, DRIVER_OK and at least one ring.
    """
    sections = {idstr: describe_virtio(payload, fx.transport)
                for idstr, payload in virtio_sections(data)}
    if len(sections) != len(VIRTIO_SECTIONS):
        raise FixtureError(f"expected {len(VIRTIO_SECTIONS)} virtio sections, "
                           f"found {sorted(sections)}")
    for idstr, info in sections.items():
        if info["device_endian"] != fx.endian:
            raise FixtureError(f"{idstr}: device_endian {info['device_endian']}, "
                               f"expected {fx.endian} (None = subsection absent)")
        driven = (info["guest_features"] != "0x0", bool(info["rings_placed"]),
                  bool(int(str(info["status"])) & 0x04))
        if driven != (fx.features,) * 3:
            raise FixtureError(f"{idstr}: guest features {info['guest_features']}, "
                               f"{info['rings_placed']} rings, status {info['status']}; "
                               f"expected a {'driven' if fx.features else 'reset'} device")
    return sections


def check_guest_output(fx: LiveFixture, work: Path) -> str:
    """Raise unless a booted guest reported every device; return the serial port's output."""
    port_output = (work / "vport0.out").read_bytes().decode(errors="replace")
    if fx.guest is None:
        return port_output
    console = (work / "console.log").read_bytes().decode(errors="replace")
    missing = [line for line in GUEST_DID if line not in console]
    if missing:
        raise FixtureError(f"the guest did not report: {', '.join(missing)}")
    if "hello from org.test.0" not in port_output:
        raise FixtureError(f"the guest's serial-port write did not arrive: {port_output!r}")
    return port_output


# --------------------------------------------------------------------------
# One fixture, end to end


def guest_inputs(fx: LiveFixture, guest_files: GuestFiles | None) -> dict[str, str]:
    """File names and sha256 of what ``@WORK@/kernel`` and ``@WORK@/initrd.img`` were."""
    if guest_files is None:
        elf = aarch64_bare.elf(bool(fx.bare_big_endian))
        return {"kernel": f"guest/aarch64_bare.py elf(big_endian={fx.bare_big_endian})",
                "kernel_sha256": hashlib.sha256(elf).hexdigest()}
    return {"kernel": guest_files.kernel.name,
            "kernel_sha256": hashlib.sha256(guest_files.kernel.read_bytes()).hexdigest(),
            "initrd": "guest/initramfs.py build()",
            "initrd_sha256": hashlib.sha256(guest_files.initrd).hexdigest()}


def keep_work(work: Path, kept: Path) -> None:
    """Copy a failed fixture's work directory (logs, partial stream) to ``kept``."""
    shutil.rmtree(kept, ignore_errors=True)
    shutil.copytree(work, kept, symlinks=True, ignore=shutil.ignore_patterns("*.sock"))


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary name."""
    part = path.with_name(path.name + ".part")
    part.write_bytes(data)
    part.replace(path)


def generate(fx: LiveFixture, out_dir: Path, guest_files: GuestFiles | None,
             args: argparse.Namespace, version: str) -> dict[str, object]:
    """Produce, check and compress one stream; return its manifest entry."""
    began = time.monotonic()
    argv = fx.argv()
    with tempfile.TemporaryDirectory(prefix="vmstate-forge-live-") as tmp:
        work = Path(tmp)
        populate_work(fx, work, guest_files)
        # argv[0] is the binary's name; QEMU 10.0 runs through its private prefix (qemu_versions)
        real_argv = [*qemu_command(fx.binary, fx.qemu), *(a.replace(WORK, tmp) for a in argv[1:])]
        raw = work / f"{fx.name}.mig"
        try:
            ready = save_stream(fx, real_argv, work, raw, args.timeout)
            data = raw.read_bytes()
            check_stream(data, want_vmdesc=True)
            virtio = check_virtio(fx, data)
            port_output = check_guest_output(fx, work)
            # The reload reopens the console and port files: keep the source's.
            shutil.copy(work / "console.log", work / "console-source.log")
            reload = reload_stream(real_argv, work, raw)
        except FixtureError as exc:
            if args.keep_failed:
                keep_work(work, out_dir / f"{fx.name}.failed")
                exc.args = (f"{exc} (work files kept in {out_dir / f'{fx.name}.failed'})",)
            raise FixtureError(f"{fx.name}: {exc}") from exc
        if args.keep_raw:
            shutil.copy(raw, out_dir / raw.name)
    packed = lzma.compress(data, format=lzma.FORMAT_XZ, preset=XZ_PRESET)
    write_atomically(out_dir / f"{fx.name}.mig.xz", packed)
    return {
        "name": fx.name, "description": fx.description, "argv": argv,
        "qemu": fx.qemu, "qemu_version": version,
        "guest_packages": guest_files.packages if guest_files else {},
        "guest_inputs": guest_inputs(fx, guest_files),
        "file": f"{fx.name}.mig.xz", "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "xz_size": len(packed), "xz_sha256": hashlib.sha256(packed).hexdigest(),
        "guest_ready_seconds": round(ready, 1),
        "serial_port_output": port_output,
        "reload": reload,
        "virtio": virtio,
        "generate_seconds": round(time.monotonic() - began, 1),
    }


def select(fixtures: list[LiveFixture], names: list[str] | None) -> list[LiveFixture]:
    """The fixtures named in ``names`` (all if None); unknown names are an error."""
    if names is None:
        return fixtures
    unknown = sorted(set(names) - {fx.name for fx in fixtures})
    if unknown:
        raise FixtureError(f"unknown fixture(s): {', '.join(unknown)} (see --list)")
    return [fx for fx in fixtures if fx.name in names]


def write_manifest(path: Path, entries: list[dict[str, object]], order: list[str]) -> None:
    """Merge ``entries`` into the manifest at ``path`` (by name, in corpus order)."""
    old = json.loads(path.read_text())["streams"] if path.exists() else []
    by_name = {e["name"]: e for e in old} | {e["name"]: e for e in entries}
    path.write_text(json.dumps({
        "placeholders": {WORK: "per-run temporary directory: kernel (the Debian kernel image, "
                               "or the bare-metal ELF of guest/aarch64_bare.py), initrd.img "
                               "(guest/initramfs.py), blk0.img and scsi0.img (1 MiB of zeros), "
                               "console.log, vport0.out, qmp.sock"},
        "procedure": "start QEMU with argv; booted guests: wait for "
                     f"{MARKER.decode()} on @WORK@/console.log; bare programs: wait "
                     f"{BARE_SETTLE_S:g} s; then run qmp_commands (query-migrate polled "
                     "until completed); check: QEMU loads the stream with the same argv "
                     "plus -incoming 'exec:cat FILE' (see reload)",
        "qmp_commands": ["stop", 'migrate {"uri": "exec:cat > FILE"}', "query-migrate",
                         "quit"],
        "streams": [by_name[n] for n in order if n in by_name],
    }, indent=1, sort_keys=True))  # the committed manifest's layout


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=HERE / "streams",
                   help="directory for NAME.mig.xz (default: %(default)s)")
    p.add_argument("--manifest", type=Path,
                   help="manifest to update (default: OUT/manifest-live.json)")
    p.add_argument("--cache", type=Path,
                   default=Path.home() / ".cache" / "vmstate-forge-guests",
                   help="where Debian packages are downloaded and unpacked; delete it to "
                        "pick up newer package versions (default: %(default)s)")
    p.add_argument("--only", nargs="+", metavar="NAME", help="generate only these streams")
    p.add_argument("--qemu", choices=("7.2", "10.0"), help="only the streams this QEMU version writes")
    p.add_argument("--list", action="store_true", help="list the fixtures and exit")
    p.add_argument("--timeout", type=float, default=300,
                   help="seconds to wait for the guest's marker (default: %(default)s)")
    p.add_argument("--keep-raw", action="store_true", help="also keep the uncompressed NAME.mig")
    p.add_argument("--keep-failed", action="store_true",
                   help="keep the work directory (logs, stream) of a failed fixture in OUT")
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> None:
    """Generate what ``args`` asks for and update the manifest."""
    fixtures = corpus()
    order = [fx.name for fx in fixtures]  # the manifest keeps every fixture's entry, whatever --qemu says
    if args.qemu:
        fixtures = [fx for fx in fixtures if fx.qemu == args.qemu]
    if args.list:
        for fx in fixtures:
            print(f"{fx.name:36} {fx.qemu:5} {fx.description}")
        return
    todo = select(fixtures, args.only)
    missing = sorted({fx.binary for fx in todo if fx.qemu == "7.2" and shutil.which(fx.binary) is None})
    if missing:
        raise FixtureError(f"not found on PATH: {', '.join(missing)} (Debian: apt-get install "
                           "qemu-system-x86 qemu-system-ppc qemu-system-arm)")
    out_dir = args.out.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    versions = {(fx.qemu, fx.binary): qemu_version(fx.binary, fx.qemu) for fx in todo}
    guests: dict[str, GuestFiles] = {}
    entries = []
    began = time.monotonic()
    for fx in todo:
        if fx.guest is not None and fx.guest not in guests:
            guests[fx.guest] = prepare_guest(GUESTS[fx.guest], args.cache / fx.guest)
        entry = generate(fx, out_dir, guests.get(fx.guest or ""), args, versions[(fx.qemu, fx.binary)])
        entries.append(entry)
        print(json.dumps({k: entry[k] for k in ("name", "argv", "sha256", "size", "xz_size")}),
              flush=True)
        print(f"{fx.name}: {entry['size']:,} bytes, {entry['xz_size']:,} xz, "
              f"{entry['generate_seconds']}s", file=sys.stderr)
        # after each stream: a later failure does not lose the entries of the streams made
        write_manifest(args.manifest or out_dir / "manifest-live.json", entries, order)
    print(f"{len(entries)} stream(s) in {time.monotonic() - began:.0f}s", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Entry point; one clear message and exit status 1 on failure."""
    try:
        run(parse_args(argv))
    except (FixtureError, OSError, subprocess.SubprocessError) as exc:
        print(f"generate_live.py: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
