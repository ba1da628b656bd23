"""Hostile snapshots keep the CLI's memory bounded: values are counted, not only bytes (issue 12, 3.11)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fuzz.mutate import reseal

#: 16 Mi empty lists: 16 MB of msgpack or CBOR, 32 MB of JSON; as Python lists about 1 GB
OUTER, INNER = 16, 1 << 20


def _nested(codec: str) -> bytes:
    if codec == "msgpack":
        inner = b"\xdd" + INNER.to_bytes(4, "big") + b"\x90" * INNER
        return b"\xdc" + OUTER.to_bytes(2, "big") + inner * OUTER
    if codec == "cbor":
        inner = b"\x9a" + INNER.to_bytes(4, "big") + b"\x80" * INNER
        return b"\x99" + OUTER.to_bytes(2, "big") + inner * OUTER
    inner = b"[" + b",".join([b"[]"] * INNER) + b"]"
    return b"[" + b",".join([inner] * OUTER) + b"]\n"


def peak_rss(*args: str | Path) -> tuple[int, str, int]:
    """Exit status, stderr and peak RSS (KiB) of one command, measured in a fresh parent."""
    probe = (
        "import resource, subprocess, sys\n"
        "r = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "sys.stderr.write(r.stderr)\n"
        "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe, *map(str, args)], capture_output=True, text=True)
    code, peak = (int(x) for x in result.stdout.split())
    return code, result.stderr, peak


@pytest.mark.slow
@pytest.mark.parametrize("codec", ["msgpack", "cbor", "json"])
def test_convert_of_an_item_of_16m_empty_lists_stays_under_200mb(tmp_path: Path, codec: str) -> None:
    snapshot = tmp_path / f"nested.{codec}"
    snapshot.write_bytes(reseal(codec, _nested(codec), 12))
    vmstate = shutil.which("vmstate")
    assert vmstate, "the vmstate script is not installed"
    code, stderr, peak_kib = peak_rss(vmstate, "convert", snapshot, tmp_path / "out.mig")
    assert code == 2 and stderr.count("\n") == 1, stderr
    assert "at 0xc: item 0:" in stderr and "values (limits.max_array_count + 65536)" in stderr
    assert not (tmp_path / "out.mig").exists()
    assert peak_kib < 200 * 1024, f"peak RSS {peak_kib} KiB reading a {snapshot.stat().st_size} byte snapshot"
