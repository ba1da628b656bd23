"""Make large real QEMU streams for benchmarks: guest RAM full of random pages.

A paused ``pc`` VM with ``-m RAM`` loads a random file into its RAM with
``-device loader`` (so every page is really in the stream) and migrates to a
file.  ``make_pair`` makes two such streams whose RAM differs in a handful
of pages (the second loader file is the first with those pages rewritten).
Generated on demand, never committed.
"""

from __future__ import annotations

import importlib.util
import os
import random
import shutil
import tempfile
from pathlib import Path
from types import ModuleType

__all__ = ["PAGE", "make_pair", "make_random_stream", "make_stream"]

PAGE = 4096
LOAD_ADDRESS = 0x100000
TIMEOUT_S = 600


def _random_file(path: Path, size: int, seed: int) -> None:
    rng = random.Random(seed)
    with open(path, "wb") as out:
        left = size
        while left:
            chunk = min(left, 16 << 20)
            out.write(rng.randbytes(chunk))
            left -= chunk


def _qemu_driver() -> ModuleType:
    """The QMP helpers of ``compat_fixtures/examples/generate.py`` (one VM, migrate to a file)."""
    path = Path(__file__).resolve().parent.parent / "compat_fixtures" / "examples" / "generate.py"
    spec = importlib.util.spec_from_file_location("examples_generate", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_stream(target: Path, ram_mib: int, blob: Path | None) -> Path:
    """Migrate a paused VM with ``ram_mib`` MiB (``blob`` loaded at 1 MiB) into ``target``."""
    argv = ["qemu-system-x86_64", "-M", "pc-i440fx-7.2", "-S", "-nodefaults", "-nographic", "-m", str(ram_mib),
            "-rtc", "base=2020-01-01T00:00:00,clock=vm"]
    if blob is not None:
        argv += ["-device", f"loader,file={blob},addr={LOAD_ADDRESS:#x}"]
    driver = _qemu_driver()
    driver.TIMEOUT_S = TIMEOUT_S
    with driver.vm(argv, target.parent) as qmp:
        driver.migrate_to(qmp, target)
    return target


def make_pair(directory: Path, ram_mib: int = 1024, differing_pages: int = 8, seed: int = 1) -> tuple[Path, Path, list[int]]:
    """Two streams whose RAM differs in ``differing_pages`` pages; returns their guest addresses too."""
    if shutil.which("qemu-system-x86_64") is None:
        raise RuntimeError("needs qemu-system-x86_64 (Debian's qemu-system-x86)")
    size = (ram_mib - 2) << 20
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        blob_a, blob_b = Path(tmp) / "a.bin", Path(tmp) / "b.bin"
        _random_file(blob_a, size, seed)
        shutil.copyfile(blob_a, blob_b)
        rng = random.Random(seed + 1)
        pages = sorted(rng.sample(range(size // PAGE), differing_pages))
        with open(blob_b, "r+b") as out:
            for page in pages:
                out.seek(page * PAGE)
                out.write(os.urandom(PAGE))
        a = make_stream(directory / f"ram{ram_mib}-a.mig", ram_mib, blob_a)
        b = make_stream(directory / f"ram{ram_mib}-b.mig", ram_mib, blob_b)
    return a, b, [LOAD_ADDRESS + p * PAGE for p in pages]


def make_random_stream(directory: Path, ram_mib: int = 1024, seed: int = 1) -> Path:
    """One stream whose RAM (but its first and last MiB) is random."""
    if shutil.which("qemu-system-x86_64") is None:
        raise RuntimeError("needs qemu-system-x86_64 (Debian's qemu-system-x86)")
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        blob = Path(tmp) / "ram.bin"
        _random_file(blob, (ram_mib - 2) << 20, seed)
        return make_stream(directory / f"ram{ram_mib}.mig", ram_mib, blob)
