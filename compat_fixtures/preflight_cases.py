#!/usr/bin/env python3
"""Regenerate the pre-flight corpus: real streams, destinations, and what real QEMU did with each pair.

Every case is a stream (a paused VM saved by QEMU 7.2 or 10.0, sometimes
edited) and a destination command line (QEMU version + options).  The
outcome is measured: the destination is started with ``-incoming defer``,
``migrate-incoming`` over QMP, and ``query-migrate`` polled until it says
completed or failed (QEMU exiting counts as failed); its stderr lines are
kept, less warnings.  Each destination's profile is learned once
(``vmstate.preflight.learn``) and committed, so the prediction test runs
without QEMU; another test learns them again and compares.

    python3 compat_fixtures/preflight_cases.py                  # streams, profiles and cases
    python3 compat_fixtures/preflight_cases.py --profiles-only  # learn the destinations' profiles again
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import lzma
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import attrs

HERE = Path(__file__).resolve().parent
OUT = HERE / "preflight"
if __name__ == "__main__":  # run as a script: the project root makes compat_fixtures and vmstate importable
    sys.path.insert(0, str(HERE.parent))

from compat_fixtures.generate import run_vm  # noqa: E402
from compat_fixtures.qemu_versions import qemu  # noqa: E402

X86 = "qemu-system-x86_64"
TIMEOUT_S = 60
BASE = ("-nodefaults", "-m", "16")
NET_RNG = (*BASE, "-device", "virtio-net-pci", "-device", "virtio-rng-pci")


@dataclass(frozen=True)
class Source:
    """A stream: QEMU ``version`` saving a paused VM of ``machine`` with ``args``.

    Or, with ``base``, the stream of that name with one of ``EDITS`` applied (``edited``; the tests
    derive it the same way, so edited streams are not committed).
    """

    name: str
    version: str
    machine: str
    args: tuple[str, ...]
    base: str | None = None
    edit: str | None = None


@dataclass(frozen=True)
class Destination:
    name: str
    version: str
    machine: str
    args: tuple[str, ...]

    def argv(self) -> list[str]:
        return [*qemu(self.version).command(X86), "-M", self.machine, *self.args]

    def recorded_argv(self) -> list[str]:
        """The command line as the corpus records it: no private prefix path."""
        return [f"qemu-{self.version}/{X86}", "-M", self.machine, *self.args]


NET = "0000:00:02.0/virtio-net"
#: edits of the base stream: name -> (what it does, what QEMU's rule is about)
EDIT_NOTES = {
    "rng-v2": "virtio-rng's section header says version 2 (QEMU has 1)",
    "fdc-v0": "fdc's section header says version 0 (below fdc's minimum_version_id 2)",
    "vq-index": "virtio-net vq[0]: last_avail_idx 5 on a ring the guest never set up (desc 0)",
    "vq-num": "virtio-net vq[0]: num 2048 on a ring the guest never set up",
    "features": "virtio-net: guest features 0x400000 (VIRTIO_NET_F_MQ), which the destination does not offer",
    "vector": "virtio-net vq[0]: MSI-X vector 7 (the device has 4)",
    "config-vector": "virtio-net: config MSI-X vector 9 (the device has 4)",
    "vnet-hdr": "virtio-net: has_vnet_hdr 1 (the destination has no netdev with a vnet header)",
    "config-len": "virtio-net: config_len 12 with the 4 more bytes present (QEMU keeps the 8 it has)",
}
EDITED = [(name, "pc-7.2-net-rng") for name in EDIT_NOTES]

SOURCES = [
    Source("pc-7.2-net-rng", "7.2", "pc-i440fx-7.2", NET_RNG),
    Source("pc-10.0-net-rng", "10.0", "pc-i440fx-10.0", NET_RNG),
    Source("pc-7.2-on-10.0-net-rng", "10.0", "pc-i440fx-7.2", NET_RNG),
    *[Source(f"{base}-{name}", "7.2", "pc-i440fx-7.2", NET_RNG, base=base, edit=name) for name, base in EDITED],
]

DESTINATIONS = [
    Destination("7.2-pc-7.2-net-rng", "7.2", "pc-i440fx-7.2", NET_RNG),
    Destination("10.0-pc-7.2-net-rng", "10.0", "pc-i440fx-7.2", NET_RNG),
    Destination("10.0-pc-10.0-net-rng", "10.0", "pc-i440fx-10.0", NET_RNG),
    Destination("7.2-pc-7.2-net-rng-32m", "7.2", "pc-i440fx-7.2", ("-nodefaults", "-m", "32", *NET_RNG[3:])),
    Destination("7.2-pc-7.2-net", "7.2", "pc-i440fx-7.2", (*BASE, "-device", "virtio-net-pci")),
    Destination("7.2-pc-7.2-rng", "7.2", "pc-i440fx-7.2", (*BASE, "-device", "virtio-rng-pci")),
    Destination("10.0-pc-7.2-net-rng-swapped", "10.0", "pc-i440fx-7.2",
                (*BASE, "-device", "virtio-rng-pci", "-device", "virtio-net-pci")),
    Destination("7.2-pc-7.2-net-modern-rng", "7.2", "pc-i440fx-7.2",
                (*BASE, "-device", "virtio-net-pci,disable-legacy=on", "-device", "virtio-rng-pci")),
    Destination("10.0-pc-7.2-net-legacy-rng", "10.0", "pc-i440fx-7.2",
                (*BASE, "-device", "virtio-net-pci,disable-modern=on", "-device", "virtio-rng-pci")),
]

#: (source, destination) pairs measured
CASES = [
    ("pc-7.2-net-rng", "7.2-pc-7.2-net-rng"),
    ("pc-7.2-net-rng", "10.0-pc-7.2-net-rng"),
    ("pc-7.2-net-rng", "10.0-pc-10.0-net-rng"),
    ("pc-7.2-net-rng", "7.2-pc-7.2-net-rng-32m"),
    ("pc-7.2-net-rng", "7.2-pc-7.2-net"),
    ("pc-7.2-net-rng", "7.2-pc-7.2-rng"),
    ("pc-7.2-net-rng", "10.0-pc-7.2-net-rng-swapped"),
    ("pc-7.2-net-rng", "7.2-pc-7.2-net-modern-rng"),
    ("pc-7.2-net-rng", "10.0-pc-7.2-net-legacy-rng"),
    ("pc-10.0-net-rng", "10.0-pc-10.0-net-rng"),
    ("pc-10.0-net-rng", "7.2-pc-7.2-net-rng"),
    ("pc-7.2-on-10.0-net-rng", "7.2-pc-7.2-net-rng"),
    ("pc-7.2-on-10.0-net-rng", "10.0-pc-7.2-net-rng"),
    *[(f"{base}-{name}", destination) for name, base in EDITED
      for destination in ("7.2-pc-7.2-net-rng", "10.0-pc-7.2-net-rng")],
]


def _set_header_version(data: bytes, idstr: str, version: int) -> bytes:
    import io

    from streams.qemu import SectionHeader, StreamReader, encode_record

    out = io.BytesIO()
    for record in StreamReader(io.BytesIO(data)):
        if isinstance(record, SectionHeader) and record.idstr == idstr:
            record = attrs.evolve(record, version=version)
        out.write(encode_record(record))
    return out.getvalue()


def _edit_net(data: bytes, change: Callable[[Any], None]) -> bytes:
    import io

    from vmstate.edit.virtio import edit_virtio_devices

    out = io.BytesIO()
    edit_virtio_devices(io.BytesIO(data), out, lambda idstr, device: change(device) if idstr == NET else None)
    return out.getvalue()


def _config_len(device: Any) -> None:
    device.record.fields["config_len"] = 12
    device.record.fields["config"] = bytes(device.record.fields["config"]) + bytes(4)


_EDITS: dict[str, Callable[[bytes], bytes]] = {
    "rng-v2": lambda d: _set_header_version(d, "0000:00:03.0/virtio-rng", 2),
    "fdc-v0": lambda d: _set_header_version(d, "fdc", 0),
    "vq-index": lambda d: _edit_net(d, lambda dev: setattr(dev.vqs[0], "last_avail_idx", 5)),
    "vq-num": lambda d: _edit_net(d, lambda dev: setattr(dev.vqs[0], "num", 2048)),
    "features": lambda d: _edit_net(d, lambda dev: setattr(dev, "guest_features", 1 << 22)),
    "vector": lambda d: _edit_net(d, lambda dev: setattr(dev.vqs[0], "vector", 7)),
    "config-vector": lambda d: _edit_net(d, lambda dev: dev.record.fields["transport"].fields.__setitem__(
        "config_vector", 9)),
    "vnet-hdr": lambda d: _edit_net(d, lambda dev: dev.record.fields["device"].fields.__setitem__("has_vnet_hdr", 1)),
    "config-len": lambda d: _edit_net(d, _config_len),
}


def edited(data: bytes, name: str) -> bytes:
    """The base stream ``data`` with edit ``name`` (one of ``EDIT_NOTES``) applied."""
    return _EDITS[name](data)


def make_source(source: Source, work: Path, made: dict[str, bytes]) -> bytes:
    if source.base is not None and source.edit is not None:
        return edited(made[source.base], source.edit)
    target = work / f"{source.name}.mig"
    run_vm([*qemu(source.version).command(X86), "-M", source.machine, "-S", "-nographic", *source.args,
            "-monitor", "stdio"], target)
    return target.read_bytes()


_PREFIX = re.compile(r"^qemu-system-[a-z0-9_]+: ")


def measure(destination: Destination, stream: Path, work: Path) -> dict[str, Any]:
    """Load ``stream`` into ``destination`` over QMP: completed or failed, and QEMU's error lines."""
    from vmstate.preflight.learn import DestinationError, connect_qmp

    sock = work / f"qmp-{time.monotonic_ns()}.sock"
    err_path = work / "stderr.txt"
    with open(err_path, "wb") as err:
        proc = subprocess.Popen([*destination.argv(), "-S", "-display", "none", "-incoming", "defer",
                                 "-qmp", f"unix:{sock},server=on,wait=off"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
    status = "failed"
    try:
        deadline = time.monotonic() + TIMEOUT_S
        try:
            qmp = connect_qmp(sock, proc, deadline)
        except DestinationError:
            raise RuntimeError(f"destination did not start: {err_path.read_text()}") from None
        try:
            qmp.cmd_obj({"execute": "migrate-incoming", "arguments": {"uri": f"exec:cat {stream}"}})
            while time.monotonic() < deadline:
                status = qmp.cmd_obj({"execute": "query-migrate"})["return"].get("status", "none")
                if status in ("completed", "failed"):
                    break
                time.sleep(0.1)
        except Exception:  # QEMU exits when a load fails: the connection goes
            status = "failed"
        finally:
            with contextlib.suppress(Exception):
                qmp.close()
    finally:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=2)
        proc.kill()
        proc.wait()
    lines = [_PREFIX.sub("", line) for line in err_path.read_text(errors="replace").splitlines()]
    return {"status": status, "qemu_lines": [line for line in lines if line and not line.startswith("warning:")
                                             and "terminating on signal" not in line]}


def write_profiles(profiles_dir: Path) -> None:
    """Learn every destination's profile from QEMU and write it."""
    from vmstate.preflight.learn import learn_profile

    for destination in DESTINATIONS:
        profile = learn_profile(qemu(destination.version).command(X86), ["-M", destination.machine, *destination.args])
        profile = attrs.evolve(profile, argv=tuple(destination.recorded_argv()))
        (profiles_dir / f"{destination.name}.json").write_text(
            json.dumps(profile.to_json(), indent=1, sort_keys=True) + "\n", encoding="utf-8")
        print(f"profile {destination.name}: {len(profile.sections)} sections", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profiles-only", action="store_true", help="learn the profiles again, keep the rest")
    args = parser.parse_args(argv)
    streams_dir, profiles_dir = OUT / "streams", OUT / "profiles"
    streams_dir.mkdir(parents=True, exist_ok=True)
    profiles_dir.mkdir(parents=True, exist_ok=True)
    if args.profiles_only:
        write_profiles(profiles_dir)
        return 0
    sources = {s.name: s for s in SOURCES}
    destinations = {d.name: d for d in DESTINATIONS}
    with tempfile.TemporaryDirectory() as work_name:
        work = Path(work_name)
        plain: dict[str, Path] = {}
        made: dict[str, bytes] = {}
        for source in SOURCES:
            data = made[source.name] = make_source(source, work, made)
            plain[source.name] = work / f"{source.name}.plain.mig"
            plain[source.name].write_bytes(data)
            if source.base is None:  # edited streams are derived from their base again by the tests
                (streams_dir / f"{source.name}.mig.xz").write_bytes(lzma.compress(data, preset=9))
            print(f"stream {source.name}: {len(data)} bytes", file=sys.stderr)
        write_profiles(profiles_dir)
        cases = []
        for source_name, destination_name in CASES:
            source, destination = sources[source_name], destinations[destination_name]
            outcome = measure(destination, plain[source_name], work)
            cases.append({
                "name": f"{source_name}--into--{destination_name}",
                "stream": f"streams/{source.base or source_name}.mig.xz",
                "stream_sha256": hashlib.sha256(plain[source_name].read_bytes()).hexdigest(),
                "source": {"qemu": source.version, "machine": source.machine, "args": list(source.args),
                           "edit": source.edit, "edit_note": EDIT_NOTES.get(source.edit or "")},
                "stream_name": source_name,
                "destination": destination_name,
                "destination_argv": destination.recorded_argv(),
                **outcome,
            })
            print(f"case {cases[-1]['name']}: {outcome['status']}", file=sys.stderr)
    (OUT / "cases.json").write_text(json.dumps({"cases": cases}, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
