"""Run a command as a child process: wall time and peak RSS, best of a few runs."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable

__all__ = ["run", "best"]


def run(argv: list[str], *, keep_output: bool = False, before: Callable[[], None] | None = None) -> tuple[float, int, bytes]:
    """Wall seconds, peak RSS in KiB and (if kept) stdout of one run; a failing command raises."""
    if before is not None:
        before()
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE if keep_output else subprocess.DEVNULL, stderr=subprocess.PIPE)
    out = proc.stdout.read() if proc.stdout else b""
    err = proc.stderr.read() if proc.stderr else b""
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        raise RuntimeError(f"{' '.join(argv)} failed: {err.decode(errors='replace')[-2000:]}")
    return elapsed, usage.ru_maxrss, out


def best(argv: list[str], times: int = 3, *, keep_output: bool = False,
         before: Callable[[], None] | None = None) -> tuple[float, int, bytes]:
    """Best wall time of ``times`` runs, the largest peak RSS, the last output."""
    results = [run(argv, keep_output=keep_output, before=before) for _ in range(times)]
    return min(r[0] for r in results), max(r[1] for r in results), results[-1][2]
