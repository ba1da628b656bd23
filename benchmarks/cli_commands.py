#!/usr/bin/env python3
"""What users run, timed as whole processes, interleaved with their baselines in one run.

Each round runs every command once, in the same order (so load on a shared
machine falls on all of them alike); the table gives per command the median
of the rounds (wall and CPU: user + system of the child), the ratio against
its baseline's median, and the largest peak RSS:

- ``vmstate --help`` against ``python3 -c pass``;
- on a small paused stream (``compat_fixtures/examples``' pair, unpacked):
  ``vmstate dump`` against ``python3 -c pass`` and QEMU's analyze-migration.py,
  ``migration-diff A B`` against the same;
- on a large random-RAM stream (made with QEMU by ``large_streams.make_pair``,
  or ``--streams A B``): ``vmstate dump``, ``vmstate check`` against ``cat A``;
  ``migration-diff A B`` against ``cat A B``; ``vmstate extract`` against
  analyze-migration.py ``-x``.

QEMU's analyze-migration.py is GPL code and never part of this repository:
pass ``--analyzer PATH``, or it is downloaded (the v7.2.0 file) into the scratch
directory when the network allows; without it the table says so.

Every child runs with its bytecode cached, as an installed package's is:
``PYTHONDONTWRITEBYTECODE`` is dropped from its environment and
``PYTHONPYCACHEPREFIX`` points into the scratch directory, so the warm-up
round compiles each tree's modules once (nothing is written into a tree).
With the variable set and no cache, every run of ours compiled all its
modules again (0.2-0.3 s of a small dump here), a cost no user pays.

``--before DIR`` (another checkout of this project, e.g. ``git archive
COMMIT | tar -x -C DIR``) adds a "(before)" row for each of our commands,
the same command run from that tree (``PYTHONPATH=DIR``), in the same rounds.

    python3 benchmarks/cli_commands.py [--runs 5] [--ram-mib 1024] [--streams A B] [--analyzer PATH] [--before DIR]
"""

from __future__ import annotations

import argparse
import lzma
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from large_streams import make_pair  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "compat_fixtures" / "examples"
ANALYZER_URL = "https://raw.githubusercontent.com/qemu/qemu/v7.2.0/scripts/analyze-migration.py"


#: the environment of every child: ``_cached_bytecode`` sets it up
_ENV: dict[str, str] = dict(os.environ)


def _cached_bytecode(scratch: Path) -> None:
    """Children write and reuse bytecode caches under ``scratch`` (see the module's docstring)."""
    _ENV.pop("PYTHONDONTWRITEBYTECODE", None)
    _ENV["PYTHONPYCACHEPREFIX"] = str(scratch / "pycache")


def _sample(argv: list[str], cwd: Path | None = None, before: object = None,
            env: dict[str, str] | None = None) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (user + system) and peak RSS (KiB) of one run of ``argv``; output discarded."""
    env = _ENV if env is None else env
    if callable(before):
        before()
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=cwd, env=env)
    err = proc.stderr.read() if proc.stderr else b""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        raise RuntimeError(f"{' '.join(argv)} failed: {err.decode(errors='replace')[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def _analyzer(given: Path | None, scratch: Path) -> Path | None:
    if given is not None:
        return given
    target = scratch / "analyze-migration.py"
    try:
        with urllib.request.urlopen(ANALYZER_URL, timeout=20) as response:
            target.write_bytes(response.read())
    except OSError as error:
        print(f"analyze-migration.py: not available ({error}); its rows are left out")
        return None
    return target


class _Case:
    def __init__(self, name: str, argv: list[str], baseline: str | None = None, *, cwd: Path | None = None,
                 before: object = None, target: tuple[float, str] | None = None, env: dict[str, str] | None = None) -> None:
        self.name, self.argv, self.baseline, self.cwd, self.before, self.target = name, argv, baseline, cwd, before, target
        self.env = env
        self.samples: list[tuple[float, float, int]] = []

    def run(self) -> tuple[float, float, int]:
        return _sample(self.argv, self.cwd, self.before, self.env)

    def median(self, i: int) -> float:
        return statistics.median(s[i] for s in self.samples)


_ENTRY = {"vmstate": "vmstate.cli", "migration-diff": "vmstate.diff.cli"}


def _before_twins(cases: list[_Case], tree: Path, scripts: dict[str, str]) -> list[_Case]:
    """Each case that runs one of our scripts, then the same command run from ``tree``."""
    out: list[_Case] = []
    env = {**_ENV, "PYTHONPATH": str(tree.resolve())}
    for case in cases:
        out.append(case)
        script = next((name for name, path in scripts.items() if case.argv[0] == path), None)
        if script is None or "--digest" in case.argv:
            continue
        code = f"import sys; sys.argv[0] = {script!r}; from {_ENTRY[script]} import main; sys.exit(main())"
        # -P: no current directory on sys.path, so PYTHONPATH's tree is imported, not a checkout the run starts in
        out.append(_Case(f"{case.name} (before)", [sys.executable, "-P", "-c", code, *case.argv[1:]], case.baseline,
                         cwd=case.cwd, before=case.before, env=env))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="rounds (the median is taken; at least 5)")
    parser.add_argument("--ram-mib", type=int, default=1024)
    parser.add_argument("--streams", type=Path, nargs=2, metavar=("A", "B"), help="large streams to use instead of making them")
    parser.add_argument("--analyzer", type=Path, help="QEMU's scripts/analyze-migration.py (kept outside this repository)")
    parser.add_argument("--small-only", action="store_true", help="leave out the large-stream commands")
    parser.add_argument("--before", type=Path, metavar="DIR", help="another checkout: each of our commands run from it too")
    parser.add_argument("--no-warm-up", action="store_true", help="no warm-up round (the files are already in the page cache)")
    args = parser.parse_args()
    vmstate, diff = shutil.which("vmstate"), shutil.which("migration-diff")
    if vmstate is None or diff is None:
        raise SystemExit("install the project first (pip install -e .)")
    python = sys.executable
    scratch = Path(tempfile.mkdtemp(prefix="vmstate-cli-bench-"))
    _cached_bytecode(scratch)
    try:
        analyzer = _analyzer(args.analyzer, scratch)
        small = []
        for name in ("pc-net-balloon-before", "pc-net-balloon-after"):
            path = scratch / f"{name}.mig"
            path.write_bytes(lzma.decompress((EXAMPLES / f"{name}.mig.xz").read_bytes()))
            small.append(path)
        cases = [
            _Case("python3 -c pass", [python, "-c", "pass"]),
            _Case("vmstate --help", [vmstate, "--help"], "python3 -c pass", target=(3, "python3 -c pass")),
            _Case("vmstate dump (small)", [vmstate, "dump", str(small[0])], "python3 -c pass", target=(8, "python3 -c pass")),
            _Case("migration-diff (small)", [diff, str(small[0]), str(small[1])], "python3 -c pass"),
        ]
        if analyzer is not None:
            cases.append(_Case("analyze-migration -f (small)", [python, str(analyzer), "-f", str(small[0])], "python3 -c pass"))
        if not args.small_only:
            a, b = args.streams or make_pair(scratch, args.ram_mib)[:2]
            out = scratch / "extracted"
            analyzed = scratch / "analyzed"

            def clean() -> None:
                shutil.rmtree(out, ignore_errors=True)
                shutil.rmtree(analyzed, ignore_errors=True)
                analyzed.mkdir()

            cases += [
                _Case("cat A", ["cat", str(a)]),
                _Case("cat A B", ["cat", str(a), str(b)]),
                _Case("vmstate dump A", [vmstate, "dump", str(a)], "cat A", target=(2, "cat A")),
                _Case("vmstate dump --digest sha256 A", [vmstate, "dump", "--digest", "sha256", str(a)], "cat A"),
                _Case("vmstate check A", [vmstate, "check", str(a)], "cat A", target=(3, "cat A")),
                _Case("migration-diff A B", [diff, str(a), str(b)], "cat A B", target=(3, "cat A B")),
                _Case("vmstate extract A", [vmstate, "extract", str(a), str(out)], "cat A", before=clean),
            ]
            if analyzer is not None:
                cases += [
                    _Case("analyze-migration -x A", [python, str(analyzer), "-x", "-f", str(a)], "cat A", cwd=analyzed,
                          before=clean),
                    _Case("analyze-migration -f A", [python, str(analyzer), "-f", str(a)], "cat A"),
                ]
                extract = next(c for c in cases if c.name == "vmstate extract A")
                extract.target = (1, "analyze-migration -x A")
        if args.before is not None:
            cases = _before_twins(cases, args.before, {"vmstate": vmstate, "migration-diff": diff})
        for case in cases if not args.no_warm_up else []:  # files into the page cache, the scripts' bytecode compiled
            case.run()
        for _ in range(max(5, args.runs)):
            for case in cases:
                case.samples.append(case.run())
        _report(cases, max(5, args.runs), small[0].stat().st_size, analyzer)
        return 0
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _report(cases: list[_Case], runs: int, small_size: int, analyzer: Path | None) -> None:
    by_name = {c.name: c for c in cases}
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
          f"medians of {runs} interleaved rounds; small stream {small_size} bytes")
    print("| command | wall | CPU | vs baseline (wall) | vs baseline (CPU) | peak RSS |")
    print("|---|---|---|---|---|---|")
    for case in cases:
        wall, cpu, rss = case.median(0), case.median(1), max(s[2] for s in case.samples)
        base = by_name.get(case.baseline or "")
        ratios = ("", "") if base is None else (f"{wall / base.median(0):.1f}x {base.name}", f"{cpu / max(base.median(1), 1e-3):.1f}x")
        print(f"| `{case.name}` | {wall:.3f} s | {cpu:.3f} s | {ratios[0]} | {ratios[1]} | {rss / 1024:.0f} MiB |")
    print()
    for case in cases:
        if case.target is None:
            continue
        limit, against = case.target
        base = by_name[against]
        ratio = case.median(0) / base.median(0)
        print(f"target `{case.name}` <= {limit}x `{against}` (wall): {ratio:.2f}x, {'met' if ratio <= limit else 'NOT met'}")
    if "migration-diff A B" in by_name:
        rss = max(s[2] for s in by_name["migration-diff A B"].samples) / 1024
        print(f"target `migration-diff A B` peak RSS < 150 MB: {rss * 1.048576:.0f} MB, {'met' if rss * 1.048576 < 150 else 'NOT met'}")
    if analyzer is None:
        print("analyze-migration.py: not available in this run, its comparisons are not made")


if __name__ == "__main__":
    sys.exit(main())
