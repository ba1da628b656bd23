#!/usr/bin/env python3
"""Measure which PCI config bytes real QEMU refuses to load changed, and with which masks.

For each device below, a paused VM is saved; then, from byte 0x40 on, every
config byte from ``start`` to the end is inverted in the saved stream (raw
bytes, no codec in between) and the stream is loaded into the same command
line.  QEMU names the first byte it refuses (``Bad config data: i=...``) with
its cmask, wmask and w1cmask; the next try starts after it, until a try
loads.  ``pci_config_masks.json`` keeps each device's own config bytes and
the refused bytes with their masks; ``vmstate.preflight.pci_config`` is
tested against it.

    python3 compat_fixtures/pci_config_masks.py
"""

from __future__ import annotations

import io
import json
import re
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent))

from compat_fixtures.generate import run_vm  # noqa: E402
from compat_fixtures.preflight_cases import X86, Destination, measure  # noqa: E402
from compat_fixtures.qemu_versions import qemu  # noqa: E402

OUT = HERE / "pci_config_masks.json"
_ROOT_PORT = ("-device", "pcie-root-port,id=rp0,bus=pcie.0,chassis=1")
#: name -> (QEMU version, machine, arguments)
DEVICES = {
    "7.2-pc-net": ("7.2", "pc-i440fx-7.2", ("-device", "virtio-net-pci")),
    "10.0-pc-net": ("10.0", "pc-i440fx-10.0", ("-device", "virtio-net-pci")),
    "7.2-pc-net-legacy": ("7.2", "pc-i440fx-7.2", ("-device", "virtio-net-pci,disable-modern=on")),
    "7.2-q35-root-port-net": ("7.2", "pc-q35-7.2", (*_ROOT_PORT, "-device", "virtio-net-pci,bus=rp0")),
    "10.0-q35-root-port-net": ("10.0", "pc-q35-10.0", (*_ROOT_PORT, "-device", "virtio-net-pci,bus=rp0")),
}
_BAD = re.compile(r"i=(0x[0-9a-f]+) read: [0-9a-f]+ device: [0-9a-f]+ cmask: ([0-9a-f]+) wmask: ([0-9a-f]+) "
                  r"w1cmask:([0-9a-f]+)")


def _own_config(data: bytes) -> bytes:
    from vmstate.edit.virtio import edit_virtio_devices

    configs: list[bytes] = []
    edit_virtio_devices(io.BytesIO(data), io.BytesIO(),
                        lambda _idstr, device: configs.append(bytes(device.record.fields["transport"].fields["pci"]
                                                                    .fields["config"])))
    return configs[0]


def sweep(name: str, work: Path) -> dict[str, object]:
    version, machine, args = DEVICES[name]
    base = ("-nodefaults", "-m", "16", *args)
    source = work / f"{name}.mig"
    run_vm([*qemu(version).command(X86), "-M", machine, "-S", "-nographic", *base, "-monitor", "stdio"], source)
    data = source.read_bytes()
    config = _own_config(data)
    if data.count(config) != 1:
        raise SystemExit(f"{name}: the config bytes are not unique in the stream")
    where, destination = data.index(config), Destination(name, version, machine, base)
    refused: list[list[int]] = []
    start, outcome = 0x40, {}
    while start < len(config):
        edited = bytearray(data)
        for i in range(start, len(config)):
            edited[where + i] ^= 0xFF
        (work / "edited.mig").write_bytes(bytes(edited))
        outcome = measure(destination, work / "edited.mig", work)
        found = next((m for m in map(_BAD.search, outcome["qemu_lines"]) if m), None)
        if found is None:
            break
        refused.append([int(found[1], 16), int(found[2], 16), int(found[3], 16), int(found[4], 16)])
        start = refused[-1][0] + 1
    print(f"{name}: {len(refused)} refused bytes, then {outcome.get('status')} from {start:#x}", file=sys.stderr)
    return {"qemu": version, "machine": machine, "args": list(base), "config": config.hex(),
            "refused": refused, "loads_from": start, "last_status": outcome.get("status")}


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="pci-masks-", dir="/tmp") as work_name:
        found = {name: sweep(name, Path(work_name)) for name in DEVICES}
    OUT.write_text(json.dumps(found, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
