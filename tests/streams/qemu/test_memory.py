"""Reading a stream keeps memory bounded whatever the guest RAM size."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from streams.qemu import RamEos, RamPage, RamZero, StreamReader, StreamWriter
from tests.support.paths import CORPUS

PAGES = 50_000  # ~200 MB of page records


def _big_stream(path: Path) -> None:
    """A real stream with ~200 MB of extra page records (pages may be resent, as in live migration)."""
    with open(path, "wb") as sink:
        writer = StreamWriter(sink)
        block = None
        for record in StreamReader(open(CORPUS / "pc-7.2-virtio-rng-legacy.mig", "rb")):
            if isinstance(record, (RamPage, RamZero)) and block is None:
                block = record.block
            if isinstance(record, RamEos) and block:
                noise = os.urandom(8192)
                for i in range(PAGES):
                    writer.write(RamPage(block, (i * 4096) % (16 << 20), 0x08, noise[i % 4096 : i % 4096 + 4096]))
                block = ""  # injected once
            writer.write(record)
        assert block == ""


@pytest.mark.slow
def test_check_of_a_200mb_stream_stays_under_100mb_rss(tmp_path: Path) -> None:
    stream = tmp_path / "big.mig"
    _big_stream(stream)
    assert stream.stat().st_size > PAGES * 4096
    vmstate = shutil.which("vmstate")
    assert vmstate, "the vmstate script is not installed"
    # Measure in a fresh parent whose only child is vmstate: RUSAGE_CHILDREN of
    # this test process also remembers earlier children (QEMU guests of other tests).
    probe = (
        "import resource, subprocess, sys\n"
        "r = subprocess.run(sys.argv[1:], capture_output=True)\n"
        "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe, vmstate, "check", str(stream)], capture_output=True, text=True)
    returncode, peak_kib = (int(x) for x in result.stdout.split())
    assert returncode == 0, result.stderr
    assert peak_kib < 100 * 1024, f"peak RSS {peak_kib} KiB for a {stream.stat().st_size} byte stream"
    print(f"peak RSS {peak_kib} KiB checking a {stream.stat().st_size} byte stream")
