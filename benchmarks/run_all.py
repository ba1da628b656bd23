#!/usr/bin/env python3
"""Run every benchmark in turn and print what each measured (the source of RESULTS.md).

    python3 benchmarks/run_all.py [--ram-mib 1024] [--analyzer PATH/TO/analyze-migration.py]

Needs the project installed (``pip install -e .``) and Debian's
qemu-system-x86 (the large streams are made by QEMU).  Each script compares
against a baseline measured in the same run; see its own docstring.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ram-mib", type=int, default=1024)
    parser.add_argument("--analyzer", type=Path, help="QEMU's scripts/analyze-migration.py (kept outside this repository)")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {platform.processor() or '?'}, Python {platform.python_version()}")
    runs = [
        ["cli_commands.py", "--ram-mib", str(args.ram_mib)] + (["--analyzer", str(args.analyzer)] if args.analyzer else []),
        ["decode_large.py", "--ram-mib", str(args.ram_mib)] + (["--analyzer", str(args.analyzer)] if args.analyzer else []),
        ["diff_large.py", "--ram-mib", str(args.ram_mib)],
        ["engine.py"],
        ["snapshot_codecs.py", "--ram-mib", str(min(args.ram_mib, 512))],
    ]
    status = 0
    for argv in runs:
        print(f"\n== {' '.join(argv)}", flush=True)
        status |= subprocess.run([sys.executable, str(HERE / argv[0]), *argv[1:]], check=False).returncode
    return status


if __name__ == "__main__":
    sys.exit(main())
