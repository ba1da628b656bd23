"""Shrink an input while it keeps doing the same thing (the same failure, or the same typed error).

Plain delta debugging over the mutated payload: delete chunks, halving their
size, while the input keeps its signature; then try zeroing bytes.  A
snapshot's items are re-sealed after every deletion (``Seed.build``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from .mutate import Seed
from .targets import Result, Target, execute

__all__ = ["minimize", "outcome_signature", "signature"]

_NUMBERS = re.compile(r"0x[0-9a-f]+|\d+|'[^']*'")


def outcome_signature(target: Target, result: Result, message: str = "") -> str:
    """What an input did, coarsely: the failure's signature, or the typed error and its message with numbers and names blanked."""
    if result.failure is not None:
        return result.failure.signature
    return f"{target.name}|{result.outcome}|{_NUMBERS.sub('#', message)[:60]}"


def signature(target: Target, data: bytes, original: bytes) -> str:
    """Run ``data`` (untraced unless the failure is about memory) and return its outcome signature."""
    message = ""

    def run(d: bytes, o: bytes) -> None:
        nonlocal message
        try:
            target.run(d, o)
        except Exception as error:
            message = str(error).split(": ", 1)[-1]
            raise

    probe = Target(target.name, target.seed_kinds, run)
    result = execute(probe, data, original, trace=False)
    if result.failure is None or result.failure.kind == "memory":
        result = execute(probe, data, original, trace=True)
    return outcome_signature(target, result, message)


def minimize(target: Target, seed: Seed, payload: bytes, edits: list[tuple[int, int]],
             keep: Callable[[str], bool] | None = None, *, seconds: float = 60.0) -> tuple[bytes, list[tuple[int, int]]]:
    """A smaller payload with the same signature as ``payload`` (or one ``keep`` accepts), and its edits."""
    original = seed.data
    wanted = signature(target, seed.build(payload, edits), original)
    keep = keep or (lambda found: found == wanted)
    deadline = time.monotonic() + seconds
    best, best_edits = bytes(payload), list(edits)
    chunk = max(len(best) // 2, 1)
    while chunk >= 1 and time.monotonic() < deadline:
        start = 0
        while start < len(best) and time.monotonic() < deadline:
            candidate = best[:start] + best[start + chunk :]
            candidate_edits = [*best_edits, (start, -min(chunk, len(best) - start))]
            if candidate and keep(signature(target, seed.build(candidate, candidate_edits), original)):
                best, best_edits = candidate, candidate_edits
            else:
                start += chunk
        chunk //= 2
    return best, best_edits
