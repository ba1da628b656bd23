#!/usr/bin/env python3
"""Regenerate the corpus of small real QEMU migration streams.

Each fixture is a paused VM (``-S``, guest never runs) whose state is written
with the HMP command ``migrate "exec:cat > FILE"``.  The corpus is declared
once, in :func:`corpus`; ``manifest.json`` records how every file was made.

Usage::

    python3 compat_fixtures/generate.py               # all streams + dumps
    python3 compat_fixtures/generate.py --only NAME   # a subset of streams
    python3 compat_fixtures/generate.py --qemu 10.0   # the streams of one QEMU version
    python3 compat_fixtures/generate.py --dump-vmstate
    python3 compat_fixtures/generate.py --list
"""
from __future__ import annotations

import argparse
import hashlib
import json
import lzma
import re
import shlex
import shutil
import struct
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

if not __package__:  # run as a script (or imported by generate_live.py): the project root holds compat_fixtures
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from compat_fixtures.qemu_versions import QemuMissing
from compat_fixtures.qemu_versions import qemu as installed_qemu

X86 = "qemu-system-x86_64"
PPC64 = "qemu-system-ppc64"
AARCH64 = "qemu-system-aarch64"
QEMU_IMG = "qemu-img"

IMAGES = "@IMAGES@"  # placeholder for the temporary directory of disk images
IMAGE_RE = re.compile(re.escape(IMAGES) + r"/([A-Za-z0-9_.-]+\.img)")
TIMEOUT_S = 120
XZ_PRESET = 9
QEVM_HEADER = b"QEVM\x00\x00\x00\x03"

VIRTIO_KINDS = ("net", "blk", "serial", "balloon", "rng", "scsi")
# virtio-pci transport modes -> extra property on the -device option
PCI_MODES = {"legacy": ",disable-modern=on", "modern": ",disable-legacy=on", "default": ""}

# pseries: the default PHB's 1 GiB DMA window costs a 2 MiB TCE table in the
# stream; a 16 MiB window keeps the stream small and changes nothing else.
PSERIES_SMALL_DMA = ("-global", "spapr-pci-host-bridge.dma_win_size=0x1000000")
ARM_CPU = ("-cpu", "cortex-a57")
# Multiqueue devices; the tap backend (needs /dev/net/tun, root) has 4 queue pairs, which is what
# puts virtio-net's max_queue_pairs on the wire (hw/net/virtio-net.c, max_queue_pairs_gt_1).
MULTIQUEUE = (
    "-netdev", "tap,id=n0,queues=4,script=no,downscript=no",
    "-device", "virtio-net-pci,netdev=n0,mq=on,vectors=10",
    "-drive", f"if=none,id=blk0,format=raw,file={IMAGES}/blk0.img",
    "-device", "virtio-blk-pci,drive=blk0,num-queues=4",
    "-device", "virtio-serial-pci,id=vser0,max_ports=4", "-chardev", "null,id=vser0c",
    "-device", "virtserialport,bus=vser0.0,name=org.test.0,chardev=vser0c",
    "-drive", f"if=none,id=scsi0d,format=raw,file={IMAGES}/scsi0.img",
    "-device", "virtio-scsi-pci,id=scsi0,num_queues=2", "-device", "scsi-hd,bus=scsi0.0,drive=scsi0d",
    "-device", "virtio-balloon-pci,free-page-reporting=on",
)

# Virtio devices beyond the six, each a virtio 1.0 device: virtio-pci forces them modern
# (hw/virtio/virtio-pci.c virtio_pci_force_virtio_1), so there is no legacy variant.
# virtio-mem needs hotplug room (slots, maxmem) and a backend; 256 MiB in 1 MiB blocks,
# 16 MiB requested (the paused guest plugs nothing).
INPUT_DEVICES = ("virtio-keyboard", "virtio-mouse", "virtio-tablet")
VIRTIO_MEM = ("-m", "16,slots=2,maxmem=512M", "-object", "memory-backend-ram,id=mem0,size=256M")
VIRTIO_MEM_OPTS = "memdev=mem0,block-size=1M,requested-size=16M"


def more_virtio_args(kind: str, bus: str = "pci") -> tuple[str, ...]:
    """Options for one of the virtio devices beyond the six (``bus``: ``pci`` or ``device``, mmio)."""
    mode = PCI_MODES["modern"] if bus == "pci" else ""
    if kind == "input":
        return tuple(a for dev in INPUT_DEVICES for a in ("-device", f"{dev}-{bus}{mode}"))
    if kind == "gpu":
        return ("-device", f"virtio-gpu-{bus}{mode}")
    if kind == "vga":
        return ("-device", "virtio-vga,max_outputs=2")
    if kind == "iommu":
        return ("-device", f"virtio-iommu-{bus}{mode}")
    if kind == "mem":
        return VIRTIO_MEM + ("-device", f"virtio-mem-{bus},{VIRTIO_MEM_OPTS}{mode}")
    raise FixtureError(f"unknown virtio kind {kind!r}")


def ninep_args(mode: str) -> tuple[str, ...]:
    """virtio-9p-pci on a read-only share of the images directory (never mounted: the guest is paused)."""
    return ("-fsdev", f"local,id=fs0,path={IMAGES},security_model=none,readonly=on",
            "-device", f"virtio-9p-pci,fsdev=fs0,mount_tag=share{PCI_MODES[mode]}")


MORE_KINDS = {"input": "virtio-keyboard/-mouse/-tablet-pci", "gpu": "virtio-gpu-pci",
              "iommu": "virtio-iommu-pci", "mem": "virtio-mem-pci (256 MiB in 1 MiB blocks, 16 MiB requested)"}


class FixtureError(Exception):
    """A fixture could not be produced or is malformed."""


@dataclass(frozen=True)
class Fixture:
    """One stream of the corpus: a paused VM and how to start it."""

    name: str
    binary: str
    machine: str
    memory_mib: int
    device_args: tuple[str, ...]
    description: str
    vmdesc: bool = True  # stream must end with a vmdesc JSON trailer
    qemu: str = "7.2"  # the QEMU version that writes it (compat_fixtures.qemu_versions)
    xz: bool = False  # stored xz-compressed (NAME.mig.xz)

    def argv(self) -> list[str]:
        """The QEMU command line (disk images under the IMAGES placeholder); argv[0] is the binary's name."""
        return [self.binary, "-M", self.machine, "-S", "-nodefaults", "-nographic",
                "-m", str(self.memory_mib), *self.device_args, "-monitor", "stdio"]

    def file_name(self) -> str:
        """``NAME.mig``, or ``NAME.mig.xz`` when stored compressed."""
        return f"{self.name}.mig" + (".xz" if self.xz else "")


@dataclass(frozen=True)
class Dump:
    """One ``-dump-vmstate`` output."""

    binary: str
    machine: str

    @property
    def file_name(self) -> str:
        """``<target>-<machine>.json``."""
        return f"{self.binary.removeprefix('qemu-system-')}-{self.machine}.json"


def virtio_args(kind: str, transport: str, mode: str = "default") -> tuple[str, ...]:
    """Command-line options for one virtio device of ``kind``.

    ``transport`` is ``"pci"`` or ``"device"`` (virtio-mmio); ``mode`` selects
    legacy/modern for virtio-pci.
    """
    opt = PCI_MODES[mode] if transport == "pci" else ""
    dev = f"virtio-{kind}-{transport}"
    if kind == "blk":
        return ("-drive", f"if=none,id=blk0,format=raw,file={IMAGES}/blk0.img",
                "-device", f"{dev},drive=blk0{opt}")
    if kind == "serial":
        return ("-chardev", "null,id=vser0c", "-device", f"{dev},id=vser0{opt}",
                "-device", "virtserialport,bus=vser0.0,name=org.test.0,chardev=vser0c")
    if kind == "scsi":
        return ("-drive", f"if=none,id=scsi0d,format=raw,file={IMAGES}/scsi0.img",
                "-device", f"{dev},id=scsi0{opt}",
                "-device", "scsi-hd,bus=scsi0.0,drive=scsi0d")
    return ("-device", f"{dev}{opt}")


def all_virtio(transport: str, mode: str = "default") -> tuple[str, ...]:
    """Options for all six virtio device kinds on one VM."""
    return tuple(a for kind in VIRTIO_KINDS for a in virtio_args(kind, transport, mode))


def corpus() -> list[Fixture]:
    """The corpus, in manifest order: QEMU 7.2's streams, then QEMU 10.0's."""
    return seven_two_corpus() + ten_corpus()


def seven_two_corpus() -> list[Fixture]:
    """QEMU 7.2's paused VMs."""
    x86_single = [
        Fixture(f"{prefix}-7.2-virtio-{kind}-{mode}", X86, machine, 16,
                virtio_args(kind, "pci", mode),
                f"{machine} (7.2), virtio-{kind}-pci alone, {mode} virtio-pci")
        for prefix, machine in (("pc", "pc"), ("q35", "q35"))
        for kind in VIRTIO_KINDS
        for mode in ("legacy", "modern")
    ]
    six = "all six virtio devices (net, blk, serial+port, balloon, rng, scsi+scsi-hd)"
    return x86_single + [
        Fixture("pc-7.2-virtio-all-legacy", X86, "pc", 16, all_virtio("pci", "legacy"),
                f"pc (7.2), {six}, legacy virtio-pci"),
        Fixture("pc-2.4-virtio-all", X86, "pc-i440fx-2.4", 16, all_virtio("pci"),
                f"pc-i440fx-2.4 (middle case), {six}, machine-default (legacy) virtio-pci"),
        Fixture("pc-2.2-virtio-all", X86, "pc-i440fx-2.2", 16, all_virtio("pci"),
                f"pc-i440fx-2.2: 2.2 layout (no configuration, no footers, no vmdesc), {six}",
                vmdesc=False),
        Fixture("pc-2.2-vmdesc-virtio-all", X86, "pc-i440fx-2.2,suppress-vmdesc=off", 16,
                all_virtio("pci"),
                f"pc-i440fx-2.2 layout plus a vmdesc trailer (suppress-vmdesc=off), {six}"),
        Fixture("pc-2.1-virtio-all", X86, "pc-i440fx-2.1", 16, all_virtio("pci"),
                f"pc-i440fx-2.1: 2.2 layout (no configuration, no footers, no vmdesc), {six}",
                vmdesc=False),
        Fixture("pc-2.1-smp2-hpet4-cdrom", X86, "pc-i440fx-2.1", 16,
                ("-smp", "2", "-global", "hpet.timers=4", "-device", "ide-cd,bus=ide.1",
                 *virtio_args("net", "pci"), *virtio_args("balloon", "pci")),
                "pc-i440fx-2.1: 2.2 layout, two vCPUs, an HPET with 4 timers, an empty IDE CD-ROM, "
                "virtio-net and virtio-balloon",
                vmdesc=False),
        Fixture("pseries-7.2-virtio-all-legacy", PPC64, "pseries", 256,
                PSERIES_SMALL_DMA + all_virtio("pci", "legacy"),
                f"ppc64 pseries (7.2, SLOF, 16 MiB PHB DMA window), {six}, legacy virtio-pci"),
        Fixture("pseries-2.2-virtio-all", PPC64, "pseries-2.2", 128,
                PSERIES_SMALL_DMA + all_virtio("pci"),
                f"ppc64 pseries-2.2 (2.2 layout, 16 MiB PHB DMA window), {six}, legacy virtio-pci",
                vmdesc=False),
        Fixture("q35-7.2-virtio-multiqueue", X86, "q35", 16, MULTIQUEUE,
                "q35 (7.2), multiqueue everywhere: virtio-net mq=on on a 4-queue tap backend the guest never "
                "negotiated (3 queues on the wire, max_queue_pairs 4), virtio-blk num-queues=4, "
                "virtio-serial max_ports=4, virtio-scsi num_queues=2, balloon free-page-reporting=on"),
        *[Fixture(f"{prefix}-7.2-virtio-{kind}-modern", X86, machine, 16, more_virtio_args(kind),
                  f"{machine} (7.2), {what}, modern virtio-pci (the only mode it has)")
          for kind, what in MORE_KINDS.items() for prefix, machine in (("pc", "pc"), ("q35", "q35"))],
        *[Fixture(f"{prefix}-7.2-virtio-9p-{mode}", X86, machine, 16, ninep_args(mode),
                  f"{machine} (7.2), virtio-9p-pci on a local fsdev the guest never mounted, {mode} virtio-pci")
          for prefix, machine in (("pc", "pc"), ("q35", "q35")) for mode in ("legacy", "modern")],
        Fixture("pc-2.2-virtio-more", X86, "pc-i440fx-2.2", 16,
                ("-device", "virtio-keyboard-pci", "-device", "virtio-gpu-pci", "-device", "virtio-iommu-pci")
                + VIRTIO_MEM + ("-device", f"virtio-mem-pci,{VIRTIO_MEM_OPTS}"),
                "pc-i440fx-2.2: 2.2 layout (no configuration, no footers, no vmdesc), virtio-keyboard, -gpu, "
                "-iommu and -mem on virtio-pci (no mode option: the machine's disable-modern=on would clash "
                "with disable-legacy=on; virtio_pci_force_virtio_1 makes them modern)", vmdesc=False),
        Fixture("pc-2.2-memory-slots", X86, "pc-i440fx-2.2", 16, ("-m", "16,slots=4,maxmem=1G"),
                "pc-i440fx-2.2: 2.2 layout, no devices, 4 memory slots: piix4_pm/memhp carries one "
                "status per slot (hw/acpi/memory_hotplug.c), a count the stream does not carry", vmdesc=False),
        Fixture("pc-7.2-virtio-vga", X86, "pc", 16, more_virtio_args("vga"),
                "pc (7.2), virtio-vga max_outputs=2: a virtio-gpu section (2 scanouts) and a virtio-vga one"),
        Fixture("virt-7.2-virtio-pci-more", AARCH64, "virt", 16,
                ARM_CPU + tuple(a for k in ("iommu", "mem", "gpu") for a in more_virtio_args(k))
                + ("-device", "virtio-mouse-pci"),
                "aarch64 virt (7.2) cortex-a57, virtio-iommu, -mem, -gpu and -mouse on virtio-pci (modern)"),
        Fixture("virt-7.2-virtio-mmio-input-gpu", AARCH64, "virt", 16,
                ARM_CPU + ("-device", "virtio-keyboard-device", "-device", "virtio-tablet-device",
                           "-device", "virtio-gpu-device"),
                "aarch64 virt (7.2) cortex-a57, virtio-keyboard, -tablet and -gpu on virtio-mmio (legacy, version 1)"),
        Fixture("virt-7.2-virtio-mmio-input-gpu-v2", AARCH64, "virt", 16,
                ARM_CPU + ("-global", "virtio-mmio.force-legacy=false", "-device", "virtio-keyboard-device",
                           "-device", "virtio-tablet-device", "-device", "virtio-gpu-device"),
                "aarch64 virt (7.2) cortex-a57, virtio-keyboard, -tablet and -gpu on virtio-mmio version 2"),
        Fixture("virt-7.2-virtio-mmio-all", AARCH64, "virt", 16, ARM_CPU + all_virtio("device"),
                f"aarch64 virt (7.2) cortex-a57, {six} on virtio-mmio (legacy, version 1)"),
        Fixture("virt-7.2-virtio-mmio-all-v2", AARCH64, "virt", 16,
                ARM_CPU + ("-global", "virtio-mmio.force-legacy=false") + all_virtio("device"),
                f"aarch64 virt (7.2) cortex-a57, {six} on virtio-mmio version 2 "
                "(force-legacy=false)"),
    ]


#: QEMU 10.0's fixtures: (name prefix, machine type).  ``pc-10.0-*`` is QEMU 10.0 running its own
#: pc-i440fx-10.0; ``pc-10.0-on-7.2-*`` is QEMU 10.0 running 7.2's machine type (pc-i440fx-7.2).
TEN_X86 = (("pc-10.0", "pc-i440fx-10.0"), ("q35-10.0", "pc-q35-10.0"),
           ("pc-10.0-on-7.2", "pc-i440fx-7.2"), ("q35-10.0-on-7.2", "pc-q35-7.2"))
TEN_PSERIES = (("pseries-10.0", "pseries-10.0"), ("pseries-10.0-on-7.2", "pseries-7.2"))
TEN_VIRT = (("virt-10.0", "virt-10.0"), ("virt-10.0-on-7.2", "virt-7.2"))
MORE_MODERN = tuple(a for kind in MORE_KINDS for a in more_virtio_args(kind))
MMIO_V2 = ("-global", "virtio-mmio.force-legacy=false")
MMIO_INPUT_GPU = ("-device", "virtio-keyboard-device", "-device", "virtio-tablet-device", "-device", "virtio-gpu-device")


def ten_corpus() -> list[Fixture]:
    """QEMU 10.0's paused VMs, on its own machine types and on 7.2's (stored xz-compressed)."""
    six = "all six virtio devices (net, blk, serial+port, balloon, rng, scsi+scsi-hd)"
    more = "virtio-keyboard/-mouse/-tablet, -gpu, -iommu and -mem-pci (256 MiB in 1 MiB blocks, 16 MiB requested)"
    out: list[Fixture] = []

    def add(name: str, binary: str, machine: str, memory: int, args: tuple[str, ...], what: str) -> None:
        out.append(Fixture(name, binary, machine, memory, args, f"QEMU 10.0, machine {machine}: {what}",
                           qemu="10.0", xz=True))

    for prefix, machine in TEN_X86:
        for mode in ("legacy", "modern"):
            add(f"{prefix}-virtio-all-{mode}", X86, machine, 16, all_virtio("pci", mode), f"{six}, {mode} virtio-pci")
        add(f"{prefix}-virtio-more-modern", X86, machine, 16, MORE_MODERN,
            f"{more}, modern virtio-pci (the only mode they have)")
        for mode in ("legacy", "modern"):
            add(f"{prefix}-virtio-9p-{mode}", X86, machine, 16, ninep_args(mode),
                f"virtio-9p-pci on a local fsdev the guest never mounted, {mode} virtio-pci")
        if machine.startswith("pc-i440fx"):
            add(f"{prefix}-virtio-vga", X86, machine, 16, more_virtio_args("vga"),
                "virtio-vga max_outputs=2: a virtio-gpu section (2 scanouts) and a virtio-vga one")
        else:
            add(f"{prefix}-virtio-multiqueue", X86, machine, 16, MULTIQUEUE,
                "multiqueue everywhere (as q35-7.2-virtio-multiqueue): virtio-net mq=on on a 4-queue tap "
                "backend, virtio-blk num-queues=4, virtio-serial max_ports=4, virtio-scsi num_queues=2")
    for prefix, machine in TEN_PSERIES:
        for mode in ("legacy", "modern"):
            add(f"{prefix}-virtio-all-{mode}", PPC64, machine, 256, PSERIES_SMALL_DMA + all_virtio("pci", mode),
                f"ppc64 (SLOF, 16 MiB PHB DMA window), {six}, {mode} virtio-pci")
    for prefix, machine in TEN_VIRT:
        add(f"{prefix}-virtio-mmio-all", AARCH64, machine, 16, ARM_CPU + all_virtio("device"),
            f"aarch64 cortex-a57, {six} on virtio-mmio (legacy, version 1)")
        add(f"{prefix}-virtio-mmio-all-v2", AARCH64, machine, 16, ARM_CPU + MMIO_V2 + all_virtio("device"),
            f"aarch64 cortex-a57, {six} on virtio-mmio version 2 (force-legacy=false)")
        add(f"{prefix}-virtio-mmio-input-gpu", AARCH64, machine, 16, ARM_CPU + MMIO_INPUT_GPU,
            "aarch64 cortex-a57, virtio-keyboard, -tablet and -gpu on virtio-mmio (legacy, version 1)")
        add(f"{prefix}-virtio-mmio-input-gpu-v2", AARCH64, machine, 16, ARM_CPU + MMIO_V2 + MMIO_INPUT_GPU,
            "aarch64 cortex-a57, virtio-keyboard, -tablet and -gpu on virtio-mmio version 2")
        add(f"{prefix}-virtio-pci-more", AARCH64, machine, 16,
            ARM_CPU + tuple(a for k in ("iommu", "mem", "gpu") for a in more_virtio_args(k))
            + ("-device", "virtio-mouse-pci"), "aarch64 cortex-a57, virtio-iommu, -mem, -gpu and -mouse on virtio-pci")
    return out


def dumps() -> list[Dump]:
    """The ``-dump-vmstate`` outputs, in manifest order."""
    return [Dump(X86, "pc"), Dump(X86, "pc-i440fx-2.2"), Dump(X86, "q35"),
            Dump(PPC64, "pseries"), Dump(AARCH64, "virt")]


def require_tools(wanted: set[tuple[str, str]]) -> None:
    """Fail unless every (QEMU version, binary) is installed."""
    missing = sorted(b for version, b in wanted if version == "7.2" and shutil.which(b) is None)
    if missing:
        raise FixtureError(f"QEMU tools not found on PATH: {', '.join(missing)} "
                           "(Debian: apt-get install qemu-system-x86 qemu-system-ppc "
                           "qemu-system-arm qemu-utils)")
    for version in sorted({v for v, _ in wanted}):
        try:
            installed_qemu(version)
        except QemuMissing as exc:
            raise FixtureError(str(exc)) from exc


def qemu_command(binary: str, version: str = "7.2") -> list[str]:
    """The argv prefix that runs ``binary`` of QEMU ``version`` (10.0: a private mount namespace, -L dirs)."""
    try:
        return installed_qemu(version).command(binary)
    except QemuMissing as exc:
        raise FixtureError(str(exc)) from exc


def qemu_version(binary: str, version: str = "7.2") -> str:
    """First line of ``<binary> --version`` of QEMU ``version``."""
    out = subprocess.run([*qemu_command(binary, version), "--version"], capture_output=True, text=True, check=True)
    return out.stdout.splitlines()[0].strip()


def make_images(argv: list[str], image_dir: Path) -> None:
    """Create the tiny raw images that ``argv`` refers to."""
    for name in sorted({m for arg in argv for m in IMAGE_RE.findall(arg)}):
        path = image_dir / name
        if not path.exists():
            subprocess.run([QEMU_IMG, "create", "-q", "-f", "raw", str(path), "1M"], check=True)


def monitor_script(target: Path) -> str:
    """HMP commands: migrate to ``target`` (blocks until done), report, quit."""
    if any(c in str(target) for c in '"\\'):
        raise FixtureError(f"output path must not contain quotes or backslashes: {target}")
    return f'migrate "exec:cat > {shlex.quote(str(target))}"\ninfo migrate\nquit\n'


def run_vm(argv: list[str], target: Path) -> None:
    """Start the paused VM, migrate it into ``target`` and quit."""
    try:
        proc = subprocess.run(argv, input=monitor_script(target), capture_output=True,
                              text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        raise FixtureError(f"timeout after {TIMEOUT_S}s: {shlex.join(argv)}") from exc
    if proc.returncode != 0 or "Migration status: completed" not in proc.stdout:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise FixtureError(f"QEMU failed (rc={proc.returncode}): {shlex.join(argv)}: "
                           + " | ".join(tail))


def vmdesc_span(data: bytes) -> tuple[int, int] | None:
    """(start, length) of the vmdesc JSON if the stream ends with one.

    The trailer is ``00`` (EOF) ``06`` be32-length JSON, and the JSON has no
    NUL, so the EOF byte is one of the last few NULs (the others sit in the
    length).  The length's bytes may also look like ``{`` (0x7B), so the JSON
    start is derived from the EOF position, not searched for.
    """
    eof = len(data)
    for _ in range(5):
        eof = data.rfind(b"\x00", 0, eof)
        if eof < 0:
            return None
        if data[eof + 1:eof + 2] == b"\x06" and len(data) >= eof + 6:
            (length,) = struct.unpack(">I", data[eof + 2:eof + 6])
            if eof + 6 + length == len(data):
                return eof + 6, length
    return None


def check_stream(data: bytes, want_vmdesc: bool) -> None:
    """Raise FixtureError unless ``data`` is a complete stream of the expected layout."""
    if not data.startswith(QEVM_HEADER):
        raise FixtureError("malformed stream: bad header (want QEVM, version 3)")
    span = vmdesc_span(data)
    if not want_vmdesc:
        if span is not None or data[-1] != 0x00:
            raise FixtureError("malformed stream: a stream without vmdesc must end with "
                               "the EOF byte 0x00")
        return
    if span is None:
        raise FixtureError("malformed stream: file does not end with a vmdesc trailer "
                           "(EOF 0x00, 0x06, be32 length, JSON up to the last byte)")
    start, _ = span
    try:
        json.loads(data[start:])
    except ValueError as exc:
        raise FixtureError(f"malformed stream: vmdesc JSON does not parse: {exc}") from exc


def file_record(path: Path, base: Path) -> dict[str, object]:
    """Size, sha256 and path (relative to ``base``) of a generated file."""
    data = path.read_bytes()
    return {"file": path.relative_to(base).as_posix(), "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest()}


def generate_stream(fx: Fixture, out_dir: Path, image_dir: Path, base: Path,
                    versions: dict[tuple[str, str], str]) -> dict[str, object]:
    """Produce and check one stream; return its manifest entry.

    The manifest's argv names the binary (``qemu-system-x86_64``), not the private 10.0 prefix
    that ran it; ``qemu`` and ``qemu_version`` say which QEMU that was.
    """
    argv = fx.argv()
    make_images(argv, image_dir)
    final = out_dir / fx.file_name()
    part = out_dir / f"{fx.name}.mig.part"
    part.unlink(missing_ok=True)
    try:
        run_vm([*qemu_command(fx.binary, fx.qemu), *(a.replace(IMAGES, str(image_dir)) for a in argv[1:])], part)
        data = part.read_bytes()
        check_stream(data, fx.vmdesc)
    except FixtureError as exc:
        part.unlink(missing_ok=True)
        raise FixtureError(f"{fx.name}: {exc}") from exc
    entry: dict[str, object] = {"name": fx.name, "description": fx.description, "argv": argv, "qemu": fx.qemu,
                                "qemu_version": versions[(fx.qemu, fx.binary)]}
    if not fx.xz:
        part.replace(final)
        return {**entry, **file_record(final, base)}
    packed = lzma.compress(data, format=lzma.FORMAT_XZ, preset=XZ_PRESET)
    final.with_name(final.name + ".part").write_bytes(packed)
    final.with_name(final.name + ".part").replace(final)
    part.unlink()
    return {**entry, "file": final.relative_to(base).as_posix(), "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(), "xz_size": len(packed),
            "xz_sha256": hashlib.sha256(packed).hexdigest()}


def generate_dump(dump: Dump, dump_dir: Path, base: Path,
                  versions: dict[tuple[str, str], str]) -> dict[str, object]:
    """Run ``-dump-vmstate`` for one machine; return its manifest entry."""
    dump_dir.mkdir(exist_ok=True)
    path = dump_dir / dump.file_name
    argv = [dump.binary, "-M", dump.machine, "-dump-vmstate", path.relative_to(base).as_posix()]
    subprocess.run([*qemu_command(dump.binary), *argv[1:-1], str(path)], check=True, capture_output=True,
                   timeout=TIMEOUT_S)
    try:
        json.loads(path.read_text())
    except ValueError as exc:
        raise FixtureError(f"{path}: -dump-vmstate output does not parse: {exc}") from exc
    return {"name": path.stem, "machine": dump.machine, "argv": argv,
            "qemu_version": versions[("7.2", dump.binary)], **file_record(path, base)}


def merge(old: list[dict[str, object]], new: list[dict[str, object]],
          order: list[str]) -> list[dict[str, object]]:
    """Replace entries of ``old`` by ``new`` (by name), keep ``order``."""
    by_name = {str(e["name"]): e for e in old} | {str(e["name"]): e for e in new}
    return [by_name[n] for n in order if n in by_name]


def load_manifest(path: Path) -> dict[str, list[dict[str, object]]]:
    """The existing manifest, or an empty one."""
    if not path.exists():
        return {"streams": [], "dump_vmstate": []}
    return json.loads(path.read_text())


def write_manifest(path: Path, manifest: dict[str, object]) -> None:
    """Write ``manifest`` with sorted keys and 2-space indent."""
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def select(fixtures: list[Fixture], names: list[str] | None) -> list[Fixture]:
    """The fixtures named in ``names`` (all if None); unknown names are an error."""
    if names is None:
        return fixtures
    known = {fx.name for fx in fixtures}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise FixtureError(f"unknown fixture(s): {', '.join(unknown)} (see --list)")
    return [fx for fx in fixtures if fx.name in names]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    here = Path(__file__).resolve().parent
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=here / "streams",
                   help="directory for *.mig (manifest.json and dump-vmstate/ go "
                        "next to it; default: %(default)s)")
    p.add_argument("--only", nargs="+", metavar="NAME", help="regenerate only these streams")
    p.add_argument("--qemu", choices=("7.2", "10.0"), help="only the streams this QEMU version writes")
    p.add_argument("--list", action="store_true", help="list the fixtures and exit")
    p.add_argument("--dump-vmstate", action="store_true",
                   help="only (re)write the -dump-vmstate JSON files")
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> None:
    """Generate what ``args`` asks for and update the manifest."""
    fixtures = corpus()
    if args.list:
        for fx in fixtures:
            if args.qemu and fx.qemu != args.qemu:
                continue
            print(f"{fx.name:36} {fx.qemu:5} {fx.machine:36} {fx.description}")
        return
    todo = [] if args.dump_vmstate else select(fixtures, args.only)
    if args.qemu:
        todo = [fx for fx in todo if fx.qemu == args.qemu]
    todo_dumps = dumps() if args.dump_vmstate or (args.only is None and args.qemu is None) else []
    binaries = {(fx.qemu, fx.binary) for fx in todo} | {("7.2", d.binary) for d in todo_dumps}
    require_tools(binaries | {("7.2", QEMU_IMG)})
    versions = {(v, b): qemu_version(b, v) for v, b in sorted(binaries)}
    out_dir = args.out.resolve()
    base = out_dir.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="vmstate-forge-img-") as tmp:
        streams = []
        for fx in todo:
            streams.append(generate_stream(fx, out_dir, Path(tmp), base, versions))
            print(f"{fx.name}: {streams[-1]['size']} bytes", file=sys.stderr)
    dumped = [generate_dump(d, base / "dump-vmstate", base, versions) for d in todo_dumps]
    manifest_path = base / "manifest.json"
    old = load_manifest(manifest_path)
    write_manifest(manifest_path, {
        "images_placeholder": f"{IMAGES} = temporary directory of 1 MiB raw images "
                              "(qemu-img create -f raw NAME.img 1M); not part of any stream",
        "monitor_commands": ['migrate "exec:cat > FILE"', "info migrate", "quit"],
        "streams": merge(old["streams"], streams, [fx.name for fx in fixtures]),
        "dump_vmstate": merge(old["dump_vmstate"], dumped,
                              [Path(d.file_name).stem for d in dumps()]),
    })


def main(argv: list[str] | None = None) -> int:
    """Entry point; one clear message and exit status 1 on failure."""
    try:
        run(parse_args(argv))
    except (FixtureError, subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        print(f"generate.py: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
