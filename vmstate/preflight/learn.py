"""Learn a destination's profile by running it: paused, no guest, driven over QMP.

Two runs of the destination command line as the user gives it:

1. with ``-S`` and a QMP socket: ``query-version``, ``info ramblock`` (used
   and maximum length of every RAM block), then a migration of the paused VM
   into a temporary file, whose section headers, configuration and vmdesc
   say which sections and instances the destination has, at which versions,
   through which vmsds;
2. with ``-dump-vmstate``: the version window and subsections of each of
   those vmsds.

Nothing is guessed: a destination that does not start, migrate or dump is a
``DestinationError`` with what it printed.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs

from streams import records
from streams.qemu import StreamReader

from ..description import Record

from ..errors import VMStateError
from .feature_names import feature_mask
from .profile import FieldCheck, Profile, RamSlot, SectionSlot, VirtioSlot, VmsdShape
from .rules import listed_subsections

__all__ = ["DestinationError", "connect_qmp", "learn_profile"]

_TIMEOUT_S = 60.0
#: ``info ramblock`` rows: name, page size, offset, used, total (10.0 adds the host address and ro/rw)
_RAMBLOCK_ROW = re.compile(r"^\s*(\S.*?)\s+\d+ [KMG]iB\s+0x[0-9a-f]+\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)(?:\s.*)?$")


class DestinationError(VMStateError):
    """The destination QEMU could not be run, queried or migrated."""


def learn_profile(command: Sequence[str], qemu_args: Sequence[str], *, timeout: float = _TIMEOUT_S) -> Profile:
    """Run ``command + qemu_args`` (paused) and learn what it expects of an incoming stream."""
    argv = [*command, *qemu_args]
    with tempfile.TemporaryDirectory(prefix="vmstate-preflight-") as work_name:
        work = Path(work_name)
        version, ram, offered, own_stream = _run_paused(argv, work, timeout)
        sections, machine, vmsd_names, virtio, checks, subsections = _sections_of(own_stream)
        dump = _dump_vmstate(argv, work, timeout)
    for idstr, features in _features_by_idstr(offered, virtio).items():
        virtio[idstr] = attrs.evolve(virtio[idstr], host_features=features)
    return Profile(qemu=version, argv=tuple(argv), machine=machine, sections=sections, ram=ram,
                   vmsds={name: dump[name] for name in sorted(vmsd_names) if name in dump}, virtio=virtio,
                   field_checks=checks, subsection_versions=subsections)


@contextlib.contextmanager
def _qemu(argv: list[str], work: Path, timeout: float) -> Iterator[Any]:
    sock = work / "qmp.sock"
    display = [] if {"-nographic", "-display"} & set(argv) else ["-display", "none"]
    try:
        proc = subprocess.Popen([*argv, "-S", *display, "-qmp", f"unix:{sock},server=on,wait=off"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    except OSError as error:
        raise DestinationError(f"cannot run the destination {argv[0]!r}: {error.strerror or error}") from None
    try:
        try:
            qmp = connect_qmp(sock, proc, time.monotonic() + timeout)
        except DestinationError:
            raise DestinationError(f"the destination did not start: {_stderr(proc)}") from None
        try:
            yield qmp
        finally:
            with contextlib.suppress(Exception):
                qmp.close()
    finally:
        proc.kill()
        proc.wait()


def connect_qmp(sock: Path, proc: subprocess.Popen[Any], deadline: float) -> Any:
    """Wait for QEMU's QMP socket and connect (``qemu.qmp``'s synchronous client).

    The socket exists a moment before QEMU listens on it, so a refused connection is tried again.
    ``DestinationError`` if QEMU exits or ``deadline`` (``time.monotonic``) passes first.
    """
    from qemu.qmp.legacy import QEMUMonitorProtocol

    while not sock.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise DestinationError("QEMU exited before its QMP socket appeared")
        time.sleep(0.05)
    while True:
        qmp = QEMUMonitorProtocol(str(sock))
        try:
            qmp.connect()
            return qmp
        except Exception as error:  # qemu.qmp's ConnectError wraps ConnectionRefusedError
            with contextlib.suppress(Exception):
                qmp.close()
            if proc.poll() is not None or time.monotonic() > deadline:
                raise DestinationError(f"cannot connect to the destination's QMP socket: {error}") from None
            time.sleep(0.05)


def _stderr(proc: subprocess.Popen[bytes]) -> str:
    with contextlib.suppress(Exception):
        proc.kill()
        _, err = proc.communicate(timeout=5)
        lines = [line for line in err.decode("utf-8", "replace").splitlines() if line.strip()]
        return " | ".join(lines[-3:]) or "(nothing on stderr)"
    return "(no stderr)"


def _command(qmp: Any, execute: str, **arguments: Any) -> Any:
    reply = qmp.cmd_obj({"execute": execute, "arguments": arguments} if arguments else {"execute": execute})
    if "error" in reply:
        raise DestinationError(f"the destination refused {execute}: {reply['error'].get('desc')}")
    return reply["return"]


#: a virtio device as ``x-query-virtio`` knows it: its name, the PCI devfn of its proxy (None off PCI
#: or off the root bus) and the features it offers (None when a name is not in ``feature_names``)
_Offered = tuple[str, int | None, int | None]


def _run_paused(argv: list[str], work: Path, timeout: float) -> tuple[str, tuple[RamSlot, ...], list[_Offered], Path]:
    target = work / "destination.mig"
    with _qemu(argv, work, timeout) as qmp:
        version = _command(qmp, "query-version")
        line = f"QEMU {version['qemu']['major']}.{version['qemu']['minor']}.{version['qemu']['micro']}"
        if version.get("package"):
            line += f" ({version['package'].strip()})"
        ram = parse_ramblocks(_command(qmp, "human-monitor-command", **{"command-line": "info ramblock"}))
        offered = _offered_features(qmp)
        _command(qmp, "migrate", uri=f"exec:cat > {_shell_quote(str(target))}")
        deadline = time.monotonic() + timeout
        while True:
            status = _command(qmp, "query-migrate").get("status")
            if status == "completed":
                break
            if status == "failed" or time.monotonic() > deadline:
                raise DestinationError(f"the destination could not save its own state (migration {status})")
            time.sleep(0.05)
    return line, ram, offered, target


def _offered_features(qmp: Any) -> list[_Offered]:
    """Every virtio device's offered features (``x-query-virtio-status``) and where its PCI proxy sits."""
    offered: list[_Offered] = []
    listed = qmp.cmd_obj({"execute": "x-query-virtio"})
    for entry in listed.get("return", []):  # QEMU 10.0 answers an error where there is no virtio device
        status = _command(qmp, "x-query-virtio-status", path=entry["path"])
        host = status.get("host-features", {})
        named = feature_mask([*host.get("transports", []), *host.get("dev-features", [])])
        features = None if named is None else named | int(host.get("unknown-dev-features", 0))
        proxy = entry["path"].rsplit("/", 1)[0]
        devfn = None
        bus = qmp.cmd_obj({"execute": "qom-get", "arguments": {"path": proxy, "property": "parent_bus"}})
        addr = qmp.cmd_obj({"execute": "qom-get", "arguments": {"path": proxy, "property": "addr"}})
        if str(bus.get("return", "")).endswith("/pci.0") and isinstance(addr.get("return"), int):
            devfn = addr["return"]
        offered.append((str(entry["name"]), devfn, features))
    return offered


def _features_by_idstr(offered: list[_Offered], virtio: dict[str, VirtioSlot]) -> dict[str, int]:
    """Match each offered-features entry to a virtio section: by PCI address, else by a unique device name."""
    found: dict[str, int] = {}
    for name, devfn, features in offered:
        if features is None:
            continue
        if devfn is not None:
            prefix = f"0000:00:{devfn >> 3:02x}.{devfn & 7}/"
            matches = [idstr for idstr in virtio if idstr.startswith(prefix)]
        else:
            matches = [idstr for idstr in virtio if idstr.rsplit("/", 1)[-1] == name]
        if len(matches) == 1:
            found[matches[0]] = features
    return found


def _shell_quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def parse_ramblocks(text: str) -> tuple[RamSlot, ...]:
    """The rows of HMP ``info ramblock``: name, used and maximum length."""
    slots = []
    for line in text.splitlines():
        match = _RAMBLOCK_ROW.match(line)
        if match:
            slots.append(RamSlot(match.group(1), int(match.group(2), 16), int(match.group(3), 16)))
    if not slots:
        raise DestinationError("the destination's 'info ramblock' listed no RAM block")
    return tuple(slots)


_OwnStream = tuple[tuple[SectionSlot, ...], str | None, set[str], dict[str, VirtioSlot], tuple[FieldCheck, ...],
                   dict[str, dict[str, int]]]
#: vmdesc field types QEMU compares with its own value (migration/vmstate-types.c)
_CHECKED_TYPES = {"int32 le": "le", "uint8 equal": "equal", "uint16 equal": "equal", "int32 equal": "equal",
                  "uint32 equal": "equal", "uint64 equal": "equal", "int8 equal": "equal", "int16 equal": "equal"}


def _sections_of(stream: Path) -> _OwnStream:
    """The destination's own stream: its sections (idstr, instance, version, vmsd), machine, vmsd names,
    virtio, the fields QEMU compares with its own values and the subsections it sent."""
    from devices import DEFAULT_REGISTRY

    slots: list[SectionSlot] = []
    virtio: dict[str, VirtioSlot] = {}
    checks: list[FieldCheck] = []
    subsections: dict[str, dict[str, int]] = {}
    machine = None
    with open(stream, "rb") as source:
        reader = StreamReader(source, descriptions=DEFAULT_REGISTRY)
        entries = {(d.get("name"), d.get("instance_id")): d
                   for d in (reader.vmdesc or {}).get("devices", []) if isinstance(d, dict)}
        vmsd_of = {key: entry.get("vmsd_name") for key, entry in entries.items()}
        for record in reader:
            match record:
                case records.Configuration():
                    machine = record.machine
                case records.SectionHeader(idstr=str() as idstr, instance_id=int() as instance, version=int() as version):
                    vmsd = vmsd_of.get((idstr, instance))
                    slots.append(SectionSlot(idstr, instance, version, vmsd if isinstance(vmsd, str) else None))
                case records.DeviceState(record=Record(fields={"virtio": Record() as state})):
                    virtio[record.idstr] = _virtio_slot(state)
                case records.DeviceState(idstr=idstr, instance_id=instance):
                    entry = entries.get((idstr, instance))
                    if entry is not None:
                        checks.extend(_field_checks(idstr, instance, entry, record.record))
            if isinstance(record, records.SectionHeader) and record.idstr is not None:
                entry = entries.get((record.idstr, record.instance_id or 0))
                if entry is not None:
                    sent = dict(listed_subsections(entry))
                    if sent:
                        subsections[record.idstr] = sent
    return (tuple(slots), machine, {s.vmsd_name for s in slots if s.vmsd_name is not None}, virtio, tuple(checks),
            subsections)


def _field_checks(idstr: str, instance: int, entry: dict[str, Any], record: Record) -> Iterator[FieldCheck]:
    """The top-level fields of a section that QEMU compares with its own value, with the destination's value."""
    vmsd = entry.get("vmsd_name")
    for field in entry.get("fields", []) if isinstance(entry.get("fields"), list) else []:
        kind = field.get("type") if isinstance(field, dict) else None
        rule = _CHECKED_TYPES.get(kind) if isinstance(kind, str) else None
        value = record.fields.get(field.get("name")) if rule else None
        if rule and isinstance(vmsd, str) and isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            yield FieldCheck(idstr, instance, vmsd, str(field["name"]), rule, value)


def _virtio_slot(state: Record) -> VirtioSlot:
    """MSI-X vectors and the vnet header of one of the destination's own virtio sections."""
    transport = state.fields.get("transport")
    table = transport.fields.get("msix_table") if isinstance(transport, Record) else None
    vectors = len(table) // 16 if isinstance(table, (bytes, bytearray)) else None
    device = state.fields.get("device")
    vnet = device.fields.get("has_vnet_hdr") if isinstance(device, Record) else None
    pci = transport.fields.get("pci") if isinstance(transport, Record) else None
    config = pci.fields.get("config") if isinstance(pci, Record) else None
    own = bytes(config).hex() if isinstance(config, (bytes, bytearray)) and len(config) in (256, 4096) else None
    return VirtioSlot(vectors=vectors, has_vnet_hdr=None if vnet is None else bool(vnet), pci_config=own)


def _dump_vmstate(argv: list[str], work: Path, timeout: float) -> dict[str, VmsdShape]:
    """vmsd name -> shape, from the destination's ``-dump-vmstate``."""
    from ..compat._json_input import load_json
    from ..compat.errors import SchemaFormatError
    from ..compat.sources import qemu_from_json

    target = work / "dump-vmstate.json"
    try:
        run = subprocess.run([*argv, "-dump-vmstate", str(target)], stdin=subprocess.DEVNULL,
                             capture_output=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise DestinationError(f"the destination's -dump-vmstate failed: {error}") from None
    if run.returncode != 0 or not target.is_file():
        lines = run.stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
        raise DestinationError(f"the destination's -dump-vmstate failed (exit {run.returncode}): {' | '.join(lines)}")
    try:
        schema = qemu_from_json(load_json(target), "-dump-vmstate")
    except SchemaFormatError as error:
        raise DestinationError(f"the destination's -dump-vmstate is not what QEMU writes: {error}") from None
    shapes: dict[str, VmsdShape] = {}
    for node in schema.sections.values():
        shapes.setdefault(node.name, shape_of(node))
    return shapes


def shape_of(node: Any) -> VmsdShape:
    """A ``vmstate.compat.model.VmsdNode`` reduced to what loading checks."""
    return VmsdShape(
        node.name, node.version, node.minimum_version,
        {sub.name: shape_of(sub) for sub in node.subsections},
        {field.name: shape_of(field.struct) for field in node.fields if field.struct is not None},
    )
