#!/usr/bin/env python3
"""migration-diff on two large real streams, against ``cat`` of both files.

Makes two QEMU streams of a ``-m 1024`` VM whose RAM is random except for a
handful of differing pages (``large_streams.make_pair``), then times, in the
same run and with the files in the page cache:

- ``cat A B > /dev/null`` (the baseline, best of 3);
- ``migration-diff --json A B`` (best of 3), its peak RSS, and whether it
  found exactly the differing pages.

    python3 benchmarks/diff_large.py [--ram-mib 1024] [--pages 8] [--dir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from large_streams import PAGE, make_pair  # noqa: E402
from measure import best  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ram-mib", type=int, default=1024)
    parser.add_argument("--pages", type=int, default=8)
    parser.add_argument("--dir", type=Path, help="where to make the streams (default: a temporary directory)")
    parser.add_argument("--keep", action="store_true", help="keep the streams")
    parser.add_argument("--streams", type=Path, nargs=2, metavar=("A", "B"),
                        help="compare these instead (made by an earlier --keep run: the differing pages are not known)")
    args = parser.parse_args()
    directory = args.dir or Path(tempfile.mkdtemp(prefix="vmstate-bench-"))
    directory.mkdir(parents=True, exist_ok=True)
    try:
        if args.streams:
            (a, b), addresses = args.streams, None
        else:
            a, b, addresses = make_pair(directory, args.ram_mib, args.pages)
        size = a.stat().st_size + b.stat().st_size
        cat, _, _ = best(["cat", str(a), str(b)])
        diff = shutil.which("migration-diff")
        if diff is None:
            raise RuntimeError("install the project first (pip install -e .)")
        elapsed, rss, out = best([diff, "--json", str(a), str(b)], keep_output=True)
        report = json.loads(out)
        found = sorted(r["start"] for block in report["ram"] for r in block["ranges"])
        exact = found == addresses and all(r["pages"] == 1 for block in report["ram"] for r in block["ranges"])
        print(f"inputs: 2 x {a.stat().st_size / 2**20:.0f} MiB real QEMU 7.2 streams, "
              f"{len(found)} differing pages of {PAGE} bytes")
        print(f"cat A B:            {cat:7.3f} s  ({size / cat / 2**20:7.0f} MiB/s)")
        print(f"migration-diff A B: {elapsed:7.3f} s  ({size / elapsed / 2**20:7.0f} MiB/s)  "
              f"ratio {elapsed / cat:.1f}x cat, peak RSS {rss / 1024:.1f} MiB")
        if addresses is None:
            print(f"differing pages found: {', '.join(hex(p) for p in found)}")
            return 0
        print(f"differing pages found exactly: {'yes' if exact else 'NO'}")
        return 0 if exact else 1
    finally:
        if not args.keep and args.dir is None:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
