#!/usr/bin/env python3
"""Regenerate the QEMU 10.0 files of the stream formats 7.2 does not write (``compat_fixtures/formats/``).

Each is a paused 16 MiB ``pc-i440fx-10.0`` VM (the one of ``PAUSED`` below)
whose state QEMU 10.0 writes with the HMP command ``migrate file:PATH``, after
``migrate_set_capability`` for each capability the fixture names:

* ``pc-10.0-plain``: no capability (QEMU 10.0's plain stream: switchover-start,
  the vmdesc's ``configuration`` entry);
* ``pc-10.0-mapped-ram``, ``pc-10.0-mapped-ram-multifd``: mapped-ram (and
  multifd, whose channels write the same pages at the same offsets);
* ``pc-10.0-virtio-mem-mapped-ram``: a virtio-mem device (its
  ``virtio-mem-device-early`` section is saved in the setup phase, between
  RAM's START and its first PART) and its 128 MiB block, mapped;
* ``pc-10.0-postcopy-ram``: postcopy-ram on (OPEN_RETURN_PATH, PING and
  POSTCOPY_ADVISE before RAM).  QEMU reports this migration ``failed``: a file
  has no return path to open; the file it wrote is whole all the same.

The plain and the mapped-ram file come from two runs of the same VM (QEMU
does not migrate a VM a migration paused again): their clocks differ, their
RAM does not.  A mapped-ram file is sparse (24 MiB apparent, under 1 MiB of data): it is
committed xz-compressed, and ``restore`` (what the tests call) writes it back
as a sparse file, every all-zero 4 KiB block a hole.

Usage: ``python3 compat_fixtures/generate_formats.py [--only NAME...]`` (needs
``python3 -m compat_fixtures.qemu_versions install 10.0``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import lzma
import os
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

if __package__ in (None, ""):  # run as a script: the repository root on the path
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from compat_fixtures.qemu_versions import qemu  # noqa: E402

HERE = Path(__file__).resolve().parent
FORMATS = HERE / "formats"
PAUSED = ["-M", "pc-i440fx-10.0", "-S", "-nodefaults", "-nographic", "-m", "16",
          "-device", "virtio-net-pci", "-device", "virtio-balloon-pci", "-device", "virtio-rng-pci"]
VIRTIO_MEM = ["-M", "pc-i440fx-10.0", "-S", "-nodefaults", "-nographic", "-m", "16,maxmem=1G",
              "-object", "memory-backend-ram,id=vmem0,size=128M", "-device", "virtio-mem-pci,id=vm0,memdev=vmem0"]
#: name -> (VM arguments, capabilities)
FIXTURES: dict[str, tuple[list[str], tuple[str, ...]]] = {
    "pc-10.0-plain": (PAUSED, ()),
    "pc-10.0-mapped-ram": (PAUSED, ("mapped-ram",)),
    "pc-10.0-mapped-ram-multifd": (PAUSED, ("mapped-ram", "multifd")),
    "pc-10.0-virtio-mem-mapped-ram": (VIRTIO_MEM, ("mapped-ram",)),
    "pc-10.0-postcopy-ram": (PAUSED, ("postcopy-ram",)),
}
_BLOCK = 4096
_TIMEOUT_S = 120


def restore(compressed: Path, target: Path) -> Path:
    """Decompress ``compressed`` into ``target`` as a sparse file (all-zero 4 KiB blocks left as holes)."""
    zero = bytes(_BLOCK)
    with lzma.open(compressed) as source, open(target, "wb") as sink:
        while block := source.read(_BLOCK):
            if block == zero[: len(block)]:
                sink.seek(len(block), os.SEEK_CUR)
            else:
                sink.write(block)
        sink.truncate(sink.tell())
    return target


def _qmp_tools() -> ModuleType:
    """``compat_fixtures/examples/generate.py``'s QMP helpers (``vm``, ``command``)."""
    spec = importlib.util.spec_from_file_location("examples_generate", HERE / "examples" / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _migrate(tools: ModuleType, qmp: object, path: Path, capabilities: tuple[str, ...]) -> str:
    """Migrate into ``path`` with ``capabilities`` on; QEMU's final status."""
    if capabilities:
        tools.command(qmp, "migrate-set-capabilities",
                      capabilities=[{"capability": c, "state": True} for c in capabilities])
    tools.command(qmp, "migrate", uri=f"file:{path}")
    deadline = time.monotonic() + _TIMEOUT_S
    status = "none"
    while time.monotonic() < deadline:
        status = tools.command(qmp, "query-migrate").get("status", "none")
        if status in ("completed", "failed"):
            break
        time.sleep(0.05)
    return str(status)


def generate(name: str, work: Path) -> dict[str, object]:
    """Run one fixture's VM; write its file into ``FORMATS``; return its manifest entry."""
    args, capabilities = FIXTURES[name]
    tools = _qmp_tools()
    path = work / f"{name}.mig"
    with tools.vm([*qemu("10.0").command("qemu-system-x86_64"), *args], work) as qmp:
        status = _migrate(tools, qmp, path, capabilities)
    if not path.exists() or status not in ("completed", "failed"):
        raise SystemExit(f"{name}: QEMU wrote no {path.name} (status {status})")
    target = FORMATS / f"{path.name}.xz"
    target.write_bytes(lzma.compress(path.read_bytes(), preset=9))
    print(f"{target.relative_to(HERE)}: {target.stat().st_size} bytes ({path.stat().st_size} uncompressed), {status}")
    return {"file": target.name, "argv": [*args], "capabilities": list(capabilities), "qemu": "10.0",
            "status": status, "size": path.stat().st_size, "compressed": target.stat().st_size}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=sorted(FIXTURES), default=sorted(FIXTURES))
    options = parser.parse_args(argv)
    FORMATS.mkdir(exist_ok=True)
    manifest_path = FORMATS / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.exists() else {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in options.only:
            entry = generate(name, Path(tmp))
            manifest[str(entry["file"])] = entry
    manifest_path.write_text(json.dumps(dict(sorted(manifest.items())), indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
