#!/usr/bin/env python3
"""Decoding a large real stream, against ``cat`` and ``sha256sum`` of the same file.

Makes one QEMU stream of a ``-m 1024`` VM whose RAM is random
(``large_streams.make_stream``), then measures in the same run, with the
file in the page cache (best of 3, peak RSS of the child):

- ``cat`` and ``sha256sum`` (the baselines);
- ``decode``: every record read, RAM in page runs (``StreamReader(batch_pages=True)``);
- ``decode, one record per page``: the same with ``batch_pages=False``;
- ``vmstate check``: decode, re-encode and compare with the file;
- ``vmstate dump --json``: decode plus a SHA-256 per RAM block;
- ``vmstate extract``: state.json and one file per RAM block;
- with ``--analyzer PATH`` (QEMU's scripts/analyze-migration.py, kept
  outside this repository): its ``-d state`` and ``-x`` modes.

    python3 benchmarks/decode_large.py [--ram-mib 1024] [--stream FILE] [--analyzer PATH]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from large_streams import make_random_stream  # noqa: E402
from measure import best  # noqa: E402

DECODE = """
import sys
from devices import DEFAULT_REGISTRY
from streams.qemu import StreamReader
with open(sys.argv[1], "rb") as f:
    for _ in StreamReader(f, descriptions=DEFAULT_REGISTRY, batch_pages=sys.argv[2] == "runs"):
        pass
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ram-mib", type=int, default=1024)
    parser.add_argument("--stream", type=Path, help="use this stream instead of making one")
    parser.add_argument("--analyzer", type=Path, help="QEMU's analyze-migration.py, to run beside ours")
    args = parser.parse_args()
    vmstate = shutil.which("vmstate")
    if vmstate is None:
        raise SystemExit("install the project first (pip install -e .)")
    work = Path(tempfile.mkdtemp(prefix="vmstate-bench-"))
    try:
        stream = args.stream or make_random_stream(work, args.ram_mib)
        size = stream.stat().st_size
        out = work / "out"

        def clean() -> None:
            shutil.rmtree(out, ignore_errors=True)

        cases: list[tuple[str, list[str], object]] = [
            ("cat", ["cat", str(stream)], None),
            ("sha256sum", ["sha256sum", str(stream)], None),
            ("decode (page runs)", [sys.executable, "-c", DECODE, str(stream), "runs"], None),
            ("decode (a record per page)", [sys.executable, "-c", DECODE, str(stream), "pages"], None),
            ("vmstate check", [vmstate, "check", str(stream)], None),
            ("vmstate dump --json", [vmstate, "dump", "--json", str(stream)], None),
            ("vmstate extract", [vmstate, "extract", str(stream), str(out)], clean),
        ]
        if args.analyzer:
            cases += [
                ("analyze-migration -d state", [sys.executable, str(args.analyzer), "-f", str(stream)], None),
                ("analyze-migration -x", ["sh", "-c", f'mkdir -p "{out}" && cd "{out}" && '
                                          f'"{sys.executable}" "{args.analyzer}" -x -f "{stream}"'], clean),
            ]
        print(f"input: {size / 2**20:.0f} MiB real QEMU 7.2 stream ({stream.name})")
        baseline = None
        for name, argv, before in cases:
            seconds, rss, _ = best(argv, before=before)  # type: ignore[arg-type]
            baseline = baseline or seconds
            print(f"{name:<30} {seconds:7.3f} s  {size / seconds / 2**20:7.0f} MiB/s  "
                  f"{seconds / baseline:6.1f}x cat  peak RSS {rss / 1024:6.1f} MiB")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
