#!/usr/bin/env python3
"""The cross-version load matrix: a paused VM saved by QEMU 7.2 loaded by 10.0, and back.

For each machine type both versions know (``pc-i440fx-7.2``, ``pc-q35-7.2``,
``pseries-7.2``, ``virt-7.2``) and each device both versions' ``-device help``
lists, one VM is started paused with that device on the same command line by
each version, migrated to a file over QMP and loaded by the other version
(``-incoming defer``, ``migrate-incoming``, ``query-migrate`` until completed
or failed; the loader exiting counts as failed).  The loader's stderr lines
are kept as QEMU printed them.  A row without a device (``(machine)``) is the
bare machine.

Devices left out, each with its reason in the data: other buses than PCI,
ISA, USB, HDA and IDE (a virtio-bus device needs a virtio-mmio transport the
x86 machines lack, an SCSI or nvme-bus one a controller and a disk), the
``-transitional`` variants (the base device's vmsd), host-backed devices
(vhost, vfio, xen, passthrough); and any device that either version refuses
to start paused with the arguments of ``_EXTRAS`` (the first error line
says why: a missing backend, the wrong machine).

Writes ``compat_fixtures/matrix/<machine>.json`` (or ``--out DIR``) and, for every direction
that failed, the stream that failed to load, xz-compressed, as
``matrix/streams/<machine>/<device>.<version>.mig.xz``.  At most two QEMUs
run at once (``--jobs``).

    python3 -m compat_fixtures.cross_version [--machine M ...] [--only DEV ...] [--jobs 2]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import lzma
import re
import shlex
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from compat_fixtures.generate import vmdesc_span
from compat_fixtures.qemu_versions import Qemu, qemu

__all__ = ["MACHINES", "Machine", "dump_matrix", "main", "matrix_dir", "row_sections", "select_devices"]

OUT = Path(__file__).resolve().parent / "matrix"
VERSIONS = ("7.2", "10.0")
DIRECTIONS = ("7.2->10.0", "10.0->7.2")
TIMEOUT_S = 60
BARE = "(machine)"


@dataclass(frozen=True)
class Machine:
    """One machine type and the arguments every VM of its rows starts with."""

    name: str
    binary: str
    base: tuple[str, ...]


MACHINES = (
    Machine("pc-i440fx-7.2", "qemu-system-x86_64", ("-m", "16")),
    Machine("pc-q35-7.2", "qemu-system-x86_64", ("-m", "16")),
    # a 16 MiB DMA window keeps the PHB's TCE table small (compat_fixtures/generate.py)
    Machine("pseries-7.2", "qemu-system-ppc64",
            ("-m", "256", "-global", "spapr-pci-host-bridge.dma_win_size=0x1000000")),
    Machine("virt-7.2", "qemu-system-aarch64", ("-m", "16", "-cpu", "cortex-a57")),
)
COMMON = ("-S", "-nodefaults", "-nographic", "-rtc", "clock=vm")

#: arguments a device needs to start paused: (arguments before it, properties appended to it)
_EXTRAS: dict[str, tuple[tuple[str, ...], str]] = {
    "virtio-blk-pci": (("-blockdev", "null-co,node-name=d0,read-zeroes=on"), ",drive=d0"),
    "virtio-crypto-pci": (("-object", "cryptodev-backend-builtin,id=c0"), ",cryptodev=c0"),
    "ivshmem-plain": (("-object", "memory-backend-ram,id=m0,size=1M"), ",memdev=m0"),
    "nvme": ((), ",serial=matrix"),
    "pci-bridge": ((), ",chassis_nr=1"),
    "pci-bridge-seat": ((), ",chassis_nr=1"),
    "vmmouse": (("-device", "i8042"), ""),
    "usb-serial": (("-chardev", "null,id=c0"), ",chardev=c0"),
    "usb-braille": (("-chardev", "null,id=c0"), ",chardev=c0"),
    "usb-storage": (("-blockdev", "null-co,node-name=d0,read-zeroes=on"), ",drive=d0"),
    "ide-hd": (("-blockdev", "null-co,node-name=d0,read-zeroes=on"), ",drive=d0"),
    "pci-serial": (("-chardev", "null,id=c0"), ",chardev=c0"),
    "isa-serial": (("-chardev", "null,id=c0"), ",chardev=c0"),
    "isa-parallel": (("-chardev", "null,id=c0"), ",chardev=c0"),
    "isa-debugcon": (("-chardev", "null,id=c0"), ",chardev=c0"),
}
_AUDIO = ("-audiodev", "none,id=snd0")
_PARENT_BUS = {"usb-bus": ("-device", "qemu-xhci"), "HDA": ("-device", "intel-hda"), "IDE": ()}
_KEPT_BUSES = ("PCI", "ISA", "usb-bus", "HDA", "IDE")
_HOST_BACKED = re.compile(r"^(vhost-|vfio-|xen-|x-|pvrdma$|usb-host$|usb-redir$|u2f-passthru$|scsi-generic$"
                          r"|scsi-block$|virtio-input-host|ccid-card-passthru$|ivshmem-doorbell$|tpm-)")
_LINE = re.compile(r'^name "([^"]+)"(?:, bus ([^,]+))?')


def matrix_dir() -> Path:
    """Where the matrix data lives: ``compat_fixtures/matrix``."""
    return OUT


def device_help(q: Qemu, binary: str) -> dict[str, tuple[str, str | None]]:
    """``-device help`` as {name: (category, bus)}."""
    out = subprocess.run([*q.command(binary), "-device", "help"], capture_output=True, text=True,
                         timeout=TIMEOUT_S, check=True).stdout
    found: dict[str, tuple[str, str | None]] = {}
    category = ""
    for line in out.splitlines():
        if line.endswith(" devices:"):
            category = line[: -len(" devices:")]
        elif (match := _LINE.match(line)) is not None:
            found[match.group(1)] = (category, match.group(2))
    return found


def select_devices(old: dict[str, tuple[str, str | None]],
                   new: dict[str, tuple[str, str | None]]) -> tuple[list[str], dict[str, str]]:
    """The devices both versions offer that a row can try, and why each other shared one is left out."""
    kept: list[str] = []
    skipped: dict[str, str] = {}
    for name in sorted(old.keys() & new.keys(), key=str.lower):
        category, bus = old[name]
        if category == "CPU":
            continue  # every machine has its CPU: the bare machine row covers it
        if _HOST_BACKED.match(name):
            skipped[name] = "needs a host resource or an external backend"
        elif name.endswith("-transitional") and re.sub(r"-(non-)?transitional$", "", name) in old:
            skipped[name] = f"a variant of {re.sub(r'-(non-)?transitional$', '', name)} (same vmsd)"
        elif bus not in _KEPT_BUSES:
            skipped[name] = f"bus {bus or 'none'}: needs a parent device or a transport these rows do not add"
        else:
            kept.append(name)
    return kept, skipped


def device_args(name: str, bus: str | None, category: str) -> list[str]:
    """The command line a row adds for ``name``."""
    before, props = _EXTRAS.get(name, ((), ""))
    if category == "Sound" and bus != "PCI" or name in ("AC97", "ES1370", "hda-duplex", "hda-micro",
                                                         "hda-output", "usb-audio"):
        before, props = (*before, *_AUDIO), props + ",audiodev=snd0"
    parent = _PARENT_BUS.get(bus or "", ())
    return [*parent, *before, "-device", name + props]


@contextlib.contextmanager
def _qmp_vm(argv: list[str], workdir: Path) -> Iterator[tuple[Any, subprocess.Popen[bytes], Path]]:
    from vmstate.preflight.learn import DestinationError, connect_qmp

    stamp = time.monotonic_ns()
    sock, err = workdir / f"qmp-{stamp}.sock", workdir / f"stderr-{stamp}.txt"
    with open(err, "wb") as errors:
        proc = subprocess.Popen([*argv, "-qmp", f"unix:{sock},server=on,wait=off", "-monitor", "none"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errors)
    try:
        try:
            qmp = connect_qmp(sock, proc, time.monotonic() + TIMEOUT_S)
        except DestinationError:  # QEMU exited (or hung) before it listened on its socket
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
            raise _StartFailed(_lines(err)) from None
        try:
            yield qmp, proc, err
        finally:
            with contextlib.suppress(Exception):
                qmp.close()
    finally:
        proc.kill()
        proc.wait()
        sock.unlink(missing_ok=True)


class _StartFailed(Exception):
    def __init__(self, lines: list[str]) -> None:
        super().__init__(lines[0] if lines else "QEMU exited before its QMP socket appeared")
        self.lines = lines


def _lines(path: Path) -> list[str]:
    return [line.rstrip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]


def _wait(qmp: Any, proc: subprocess.Popen[bytes], said: list[str]) -> str:
    """Poll ``query-migrate`` until completed or failed (QEMU's error-desc appended to ``said``)."""
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return "failed"
        reply = qmp.cmd_obj({"execute": "query-migrate"})["return"]
        status = reply.get("status", "none")
        if status in ("completed", "failed"):
            if "error-desc" in reply:
                said.append(f"query-migrate: {reply['error-desc']}")
            return str(status)
        time.sleep(0.05)
    return "timeout"


def save(argv: list[str], target: Path, workdir: Path) -> tuple[str, list[str]]:
    """Migrate a paused VM into ``target``: (status, stderr lines)."""
    from qemu.qmp import ExecInterruptedError

    refused: list[str] = []
    with _qmp_vm(argv, workdir) as (qmp, proc, err):
        try:
            reply = qmp.cmd_obj({"execute": "migrate",
                                 "arguments": {"uri": f"exec:cat > {shlex.quote(str(target))}"}})
            if "error" in reply:  # a migration blocker: QEMU refuses to start the migration
                status, refused = "refused", [f"migrate: {reply['error'].get('desc', '')}"]
            else:
                status = _wait(qmp, proc, refused)
        except (EOFError, ConnectionError, ExecInterruptedError):
            status = "failed"
    return status, _lines(err) + refused


def load(argv: list[str], stream: Path, workdir: Path) -> tuple[str, list[str]]:
    """Load ``stream`` into a QEMU started with ``argv -incoming defer``: (status, stderr lines)."""
    from qemu.qmp import ExecInterruptedError

    said: list[str] = []
    with _qmp_vm([*argv, "-incoming", "defer"], workdir) as (qmp, proc, err):
        try:
            qmp.cmd_obj({"execute": "migrate-incoming", "arguments": {"uri": f"exec:cat {shlex.quote(str(stream))}"}})
            status = _wait(qmp, proc, said)
        except (EOFError, ConnectionError, ExecInterruptedError):
            status = "failed"  # QEMU exits when an incoming migration fails to load
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=0.5 if status != "completed" else 0.01)
    return status, _lines(err) + said


def sections(data: bytes) -> list[list[object]]:
    """The (idstr, instance, version) of every section the stream's vmdesc lists."""
    span = vmdesc_span(data)
    if span is None:
        return []
    vmdesc = json.loads(data[span[0]:span[0] + span[1]])
    return [[d["name"], d.get("instance_id", 0), d.get("version", 0)] for d in vmdesc.get("devices", [])]


def run_row(machine: Machine, device: str, extra: list[str], qemus: dict[str, Qemu], workdir: Path,
            streams_out: Path, out: Path = OUT) -> dict[str, Any]:
    """Both directions of one row; the saved streams that failed to load are kept in ``streams_out``."""
    row: dict[str, Any] = {"device": device, "args": extra}
    for writer, reader in (VERSIONS, VERSIONS[::-1]):
        direction = f"{writer}->{reader}"
        tail = ["-M", machine.name, *COMMON, *machine.base, *extra]
        stream = workdir / f"{machine.name}-{device}-{writer}.mig"
        try:
            saved, save_lines = _once_more(save, [*qemus[writer].command(machine.binary), *tail], stream, workdir)
        except _StartFailed as exc:
            return {**row, "skipped": f"QEMU {writer} does not start it: {exc}", "messages": exc.lines}
        if saved != "completed":  # refused: a migration blocker (a device QEMU marks unmigratable)
            row[direction] = {"outcome": "refused" if saved == "refused" else "save-failed", "save_status": saved,
                              "messages": save_lines}
            continue
        data = stream.read_bytes()
        entry: dict[str, Any] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data),
                                 "sections": sections(data)}
        try:
            status, lines = _once_more(load, [*qemus[reader].command(machine.binary), *tail], stream, workdir)
        except _StartFailed as exc:
            return {**row, "skipped": f"QEMU {reader} does not start it to load: {exc}", "messages": exc.lines}
        entry.update(outcome="completed" if status == "completed" else "failed", load_status=status,
                     messages=lines)
        if entry["outcome"] != "completed":
            # controls: does the writer's own version load this very stream, and the reader its own stream?
            entry["controls"] = {
                f"{writer} loads this stream": _once_more(load, [*qemus[writer].command(machine.binary), *tail],
                                                           stream, workdir)[0],
                f"{reader} loads its own stream": _control(machine, reader, extra, qemus, workdir)}
            kept = streams_out / f"{_file_name(device)}.{writer}.mig.xz"
            kept.parent.mkdir(parents=True, exist_ok=True)
            kept.write_bytes(lzma.compress(data, preset=9))
            entry["stream"] = kept.relative_to(out).as_posix()
        stream.unlink()
        row[direction] = entry
    return row


def _control(machine: Machine, version: str, extra: list[str], qemus: dict[str, Qemu], workdir: Path) -> str:
    """A failed direction's control: does ``version`` load its own stream of the same VM?"""
    argv = [*qemus[version].command(machine.binary), "-M", machine.name, *COMMON, *machine.base, *extra]
    stream = workdir / f"{machine.name}-control-{version}-{time.monotonic_ns()}.mig"
    try:
        saved, _ = _once_more(save, argv, stream, workdir)
        status = _once_more(load, argv, stream, workdir)[0] if saved == "completed" else f"save {saved}"
    except _StartFailed:
        status = "did not start"
    stream.unlink(missing_ok=True)
    return status


def _once_more(step: Any, argv: list[str], stream: Path, workdir: Path) -> tuple[str, list[str]]:
    """Run ``save`` or ``load``; a QEMU that did not start is tried once more (a busy machine can time it out)."""
    try:
        return step(argv, stream, workdir)  # type: ignore[no-any-return]
    except _StartFailed:
        return step(argv, stream, workdir)  # type: ignore[no-any-return]


def _factor_sections(rows: list[dict[str, Any]]) -> None:
    """Keep in each row only the sections the bare machine row (its first) does not have."""
    bare = next((r for r in rows if r["device"] == BARE and "skipped" not in r), None)
    if bare is None:
        return
    for direction in (f"{w}->{r}" for w, r in (VERSIONS, VERSIONS[::-1])):
        own = {tuple(s) for s in bare.get(direction, {}).get("sections", [])}
        for row in rows:
            entry = row.get(direction)
            if row is not bare and entry and "sections" in entry:
                entry["sections"] = [s for s in entry["sections"] if tuple(s) not in own]


def row_sections(matrix: dict[str, Any], row: dict[str, Any], direction: str) -> list[list[Any]]:
    """Every section the writer's stream of ``row`` held: the bare machine's and the row's own."""
    bare = next((r for r in matrix["rows"] if r["device"] == BARE), None)
    own = list(row[direction].get("sections", []))
    if bare is None or row is bare:
        return own
    return [*bare[direction].get("sections", []), *own]


def _file_name(device: str) -> str:
    return "machine" if device == BARE else re.sub(r"[^A-Za-z0-9_.-]", "_", device)


def build(machine: Machine, only: list[str] | None, jobs: int, out: Path = OUT) -> dict[str, Any]:
    """Every row of one machine type."""
    qemus = {v: qemu(v) for v in VERSIONS}
    helps = [device_help(qemus[v], machine.binary) for v in VERSIONS]
    kept, skipped = select_devices(*helps)
    if only is not None:
        kept = [d for d in kept if d in only]
        skipped = {}
    rows_in = [(d, device_args(d, helps[0][d][1], helps[0][d][0])) for d in kept]
    streams_out = out / "streams" / machine.name
    with tempfile.TemporaryDirectory(prefix="matrix-") as tmp, ThreadPoolExecutor(max_workers=jobs) as pool:
        rows = [run_row(machine, BARE, [], qemus, Path(tmp), streams_out, out)] if only is None else []
        if rows and all(rows[0][d]["outcome"] == "failed" for d in DIRECTIONS):
            # every device row would fail as the bare machine does, for the bare machine's reason
            skipped.update((d, "not run: the bare machine fails both directions (its row)") for d, _ in rows_in)
            rows_in = []
        rows += pool.map(lambda r: run_row(machine, r[0], r[1], qemus, Path(tmp), streams_out, out), rows_in)
    _factor_sections(rows)
    return {
        "schema": "vmstate-forge/cross-version-matrix/1",
        "machine": machine.name,
        "binary": machine.binary,
        "qemu": {v: qemus[v].version_line(machine.binary) for v in VERSIONS},
        "command": ["QEMU", "-M", machine.name, *COMMON, *machine.base, "ARGS"],
        "load": "the same command line with -incoming defer; migrate-incoming exec:cat STREAM",
        "rows": [r for r in rows if "skipped" not in r],
        "skipped": {**skipped, **{r["device"]: r["skipped"] for r in rows if "skipped" in r}},
    }


def _merged(matrix: dict[str, Any], fresh: dict[str, Any]) -> dict[str, Any]:
    """``matrix`` with the rows (or skips) of ``fresh``'s devices replaced, in the matrix's order."""
    new_rows = {r["device"]: r for r in fresh["rows"]}
    if BARE in new_rows:
        raise SystemExit("cross_version: regenerate the bare machine row with the whole matrix, not --only")
    fresh_rows = list(new_rows.values())
    skipped = {k: v for k, v in matrix["skipped"].items() if k not in new_rows}
    rows = [new_rows.pop(r["device"], r) for r in matrix["rows"] if r["device"] not in fresh["skipped"]]
    rows += new_rows.values()
    _factor_sections([next(r for r in rows if r["device"] == BARE), *fresh_rows])
    return {**matrix, "rows": rows, "skipped": {**skipped, **fresh["skipped"]}}


def _prune(out: Path, data: dict[str, Any]) -> None:
    """Remove kept streams of this machine type that no row names any more (a row regenerated)."""
    named = {r[d]["stream"] for r in data["rows"] for d in DIRECTIONS if "stream" in r.get(d, {})}
    for path in sorted((out / "streams" / data["machine"]).glob("*.mig.xz")):
        if path.relative_to(out).as_posix() not in named:
            path.unlink()


def dump_matrix(data: dict[str, Any]) -> str:
    """The matrix as JSON text: one line per row and per skipped device, so diffs show rows."""
    head = {k: v for k, v in data.items() if k not in ("rows", "skipped")}
    lines = [json.dumps(head, indent=1)[:-2] + ","]
    rows = [" " + json.dumps(r, separators=(",", ":")) for r in data["rows"]]
    skipped = [f" {json.dumps(k)}: {json.dumps(v)}" for k, v in data["skipped"].items()]
    lines += [' "rows": [', ",\n".join(rows), " ],", ' "skipped": {', ",\n".join(skipped), " }", "}"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m compat_fixtures.cross_version",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--machine", action="append", choices=[m.name for m in MACHINES])
    parser.add_argument("--only", action="append",
                        help="only these devices; an existing matrix keeps its other rows")
    parser.add_argument("--jobs", type=int, default=2, help="rows run at once (each runs one QEMU at a time)")
    parser.add_argument("--out", type=Path, default=OUT, help="the matrix directory (compat_fixtures/matrix)")
    args = parser.parse_args(argv)
    for machine in MACHINES:
        if args.machine and machine.name not in args.machine:
            continue
        started = time.monotonic()
        data = build(machine, args.only, args.jobs, args.out)
        target = args.out / f"{machine.name}.json"
        if args.only and target.is_file():  # regenerate these rows in the existing matrix
            data = _merged(json.loads(target.read_text(encoding="utf-8")), data)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(dump_matrix(data), encoding="utf-8")
        _prune(args.out, data)
        outcomes = [r[d]["outcome"] for r in data["rows"] for d in ("7.2->10.0", "10.0->7.2")]
        counts = ", ".join(f"{outcomes.count(o)} {o}" for o in sorted(set(outcomes)))
        print(f"{target}: {len(data['rows'])} rows ({counts} directions), {len(data['skipped'])} skipped, "
              f"{time.monotonic() - started:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
