"""Run the mutation fuzzer: ``python3 -m tests.fuzz.run --inputs 100000 [--seconds N] [--target NAME] [--ops OP]``.

Inputs go round-robin to the chosen targets; input ``i`` of target ``T`` is
mutated with ``random.Random(f"{seed}/{T}/{i}")``, so any input can be made
again from the numbers in the report (``--replay T:i``).  Every failure is
printed and, the first time its signature is seen, written with its
traceback to ``--crashes`` (default ``tests/fuzz/crashes``).  ``--corpus
DIR`` also writes minimized examples of distinct outcomes (the committed
corpus was made that way).  Failures of bugs already reported
(``targets.KNOWN_BUGS``) are counted apart.  Exit status 1 if anything else
failed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .minimize import minimize, outcome_signature
from .mutate import Mutant, Mutator, Seed, all_seeds
from .targets import TARGETS, Failure, Target, execute, memory_budget, time_budget, warm_up

HERE = Path(__file__).resolve().parent


@dataclass
class Tally:
    """What one target saw."""

    inputs: int = 0
    traced: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    known: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    worst_time: tuple[float, int] = (0.0, -1)  # elapsed / budget, input
    worst_memory: tuple[float, int] = (0.0, -1)  # peak / budget, input


def make_input(target: Target, seeds: dict[str, list[Seed]], run_seed: int, index: int) -> tuple[Seed, Mutant, bytes]:
    """Input ``index`` of ``target`` in run ``run_seed``: the seed it came from, the mutant and the bytes."""
    rng = random.Random(f"{run_seed}/{target.name}/{index}")
    kind = rng.choice(target.seed_kinds)
    seed = rng.choice(seeds[kind])
    mutant = Mutator(rng).mutate(seed, seeds[kind])
    return seed, mutant, seed.build(bytes(mutant.payload), mutant.edits)


def write_reproducer(directory: Path, target: Target, failure: Failure, data: bytes, note: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha1(data).hexdigest()[:12]
    path = directory / f"{target.name}--{failure.kind}--{digest}.bin"
    path.write_bytes(data)
    path.with_suffix(".txt").write_text(f"{failure.summary}\n{note}\n\n{failure.detail}")
    return path


def _message(target: Target, data: bytes, original: bytes) -> str:
    try:
        target.run(data, original)
    except Exception as error:  # noqa: BLE001
        return str(error).split(": ", 1)[-1]
    return ""


def _pick(found: dict[str, tuple[Target, Seed, Mutant]], limit: int) -> list[tuple[str, tuple[Target, Seed, Mutant]]]:
    """Up to ``limit`` distinct outcomes, spread over the targets, rarest error classes first."""
    by_target: dict[str, list[tuple[str, tuple[Target, Seed, Mutant]]]] = {}
    for key, value in sorted(found.items()):
        by_target.setdefault(value[0].name, []).append((key, value))
    classes = Counter(key.split("|")[1] for key in found)
    for entries in by_target.values():
        entries.sort(key=lambda entry: (classes[entry[0].split("|")[1]], len(entry[1][1].payload)))
    picked: list[tuple[str, tuple[Target, Seed, Mutant]]] = []
    while len(picked) < limit and any(by_target.values()):
        for entries in by_target.values():
            if entries and len(picked) < limit:
                picked.append(entries.pop(0))
    return picked


def _save_corpus(directory: Path, found: dict[str, tuple[Target, Seed, Mutant]], limit: int, max_size: int,
                 seconds: float) -> None:
    """Minimize one input per distinct outcome and keep those that shrink to ``max_size`` bytes or less."""
    directory.mkdir(parents=True, exist_ok=True)
    manifest_path = directory / "MANIFEST.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    for key, (target, seed, mutant) in _pick(found, limit):
        payload, edits = minimize(target, seed, bytes(mutant.payload), mutant.edits, seconds=seconds)
        data = seed.build(payload, edits)
        if len(data) > max_size:
            print(f"corpus: {key}: {len(data)} bytes after minimizing, not kept", file=sys.stderr)
            continue
        result = execute(target, data, seed.data)
        name = f"{target.name}--{hashlib.sha1(data).hexdigest()[:12]}.bin"
        (directory / name).write_bytes(data)
        manifest[name] = {"target": target.name, "seed": seed.name, "outcome": result.outcome}
        print(f"corpus: {name}: {len(data)} bytes, {result.outcome} ({key})", file=sys.stderr)
    manifest_path.write_text(json.dumps(dict(sorted(manifest.items())), indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m tests.fuzz.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=int, default=1000, help="inputs in total, spread evenly over the targets")
    parser.add_argument("--seconds", type=float, default=None, help="stop after this long, whatever --inputs says")
    parser.add_argument("--target", action="append", choices=sorted(TARGETS), help="fuzz only this target (repeatable)")
    parser.add_argument("--seed", type=int, default=0, help="run seed: the same seed makes the same inputs")
    parser.add_argument("--start", type=int, default=0, help="number of the first input per target (to split a run)")
    parser.add_argument("--trace-every", type=int, default=1, metavar="K",
                        help="measure memory (tracemalloc) on every K-th input; time is always measured")
    parser.add_argument("--crashes", type=Path, default=HERE / "crashes", help="where reproducers go")
    parser.add_argument("--corpus", type=Path, default=None, help="also write minimized inputs of distinct outcomes here")
    parser.add_argument("--corpus-limit", type=int, default=30, help="minimize and keep at most this many")
    parser.add_argument("--minimize-seconds", type=float, default=15.0, help="time spent minimizing each corpus input")
    parser.add_argument("--replay", metavar="TARGET:I", help="run one input again, verbosely, and exit")
    parser.add_argument("--ops", action="append", choices=Mutator.OPS, help="mutate with only this operation (repeatable)")
    args = parser.parse_args(argv)
    if args.ops:
        weights = dict(zip(Mutator.OPS, Mutator.WEIGHTS))
        Mutator.OPS, Mutator.WEIGHTS = tuple(args.ops), tuple(weights[op] for op in args.ops)
    seeds = all_seeds()
    if args.replay:
        name, index = args.replay.rsplit(":", 1)
        seed, mutant, data = make_input(TARGETS[name], seeds, args.seed, int(index))
        result = execute(TARGETS[name], data, seed.data)
        print(f"{seed.name} {mutant.ops} {len(data)} bytes: {result.outcome} in {result.elapsed:.3f} s, peak {result.peak}")
        if result.failure:
            print(result.failure.summary, result.failure.detail, sep="\n")
        return 1 if result.failure else 0
    targets = [TARGETS[name] for name in (args.target or TARGETS)]
    warm_up(targets, {kind: [s.data for s in group] for kind, group in seeds.items()})
    tallies = {t.name: Tally() for t in targets}
    seen: set[str] = set()
    outcomes_found: dict[str, tuple[Target, Seed, Mutant]] = {}
    started = last_report = time.monotonic()
    per_target = -(-args.inputs // len(targets))
    done = 0
    for n in range(per_target):
        if args.seconds is not None and time.monotonic() - started > args.seconds:
            break
        for target in targets:
            if done >= args.inputs:
                break
            index = args.start + n
            seed, mutant, data = make_input(target, seeds, args.seed, index)
            trace = index % args.trace_every == 0
            result = execute(target, data, seed.data, trace=trace)
            done += 1
            tally = tallies[target.name]
            tally.inputs += 1
            tally.traced += trace
            tally.seconds += result.elapsed
            tally.worst_time = max(tally.worst_time, (result.elapsed / time_budget(len(data)), index))
            if result.peak is not None:
                tally.worst_memory = max(tally.worst_memory, (result.peak / memory_budget(len(data)), index))
            if result.failure is None:
                tally.outcomes[result.outcome] += 1
                if args.corpus is not None:
                    message = _message(target, data, seed.data) if result.outcome != "ok" else ""
                    key = outcome_signature(target, result, message)
                    if len(seed.payload) <= 100_000 and (key not in outcomes_found
                                                         or len(seed.payload) < len(outcomes_found[key][1].payload)):
                        outcomes_found[key] = (target, seed, mutant)
            elif result.failure.known is not None:
                tally.known[result.failure.kind] += 1
                if result.failure.signature not in seen:
                    seen.add(result.failure.signature)
                    print(f"KNOWN {result.failure.summary} -- {result.failure.known}", flush=True)
            else:
                tally.failures[result.failure.kind] += 1
                note = f"target {target.name}, input {index} of run seed {args.seed} (--replay {target.name}:{index}), " \
                       f"seed {seed.name}, ops {mutant.ops}, {len(data)} bytes"
                print(f"FAIL {result.failure.summary} -- {note}", flush=True)
                if result.failure.signature not in seen:
                    seen.add(result.failure.signature)
                    print(f"  reproducer: {write_reproducer(args.crashes, target, result.failure, data, note)}", flush=True)
        if time.monotonic() - last_report > 30:
            last_report = time.monotonic()
            failed = sum(sum(t.failures.values()) for t in tallies.values())
            print(f"... {done} inputs in {last_report - started:.0f} s, {failed} failures", file=sys.stderr, flush=True)
    elapsed = time.monotonic() - started
    failures = 0
    last = args.start + per_target - 1
    print(f"{done} inputs in {elapsed:.0f} s (run seed {args.seed}, inputs {args.start}..{last} per target)")
    print(f"{'target':18} {'inputs':>7} {'traced':>7} {'ms/in':>6} {'ok':>6} {'typed':>7} {'failed':>6}"
          f"  {'worst time/budget':>17}  {'worst peak/budget':>17}  top outcomes")
    for name, tally in tallies.items():
        typed = sum(v for k, v in tally.outcomes.items() if k != "ok")
        failures += sum(tally.failures.values())
        top = ", ".join(f"{k} {v}" for k, v in tally.outcomes.most_common(4) if k != "ok")
        mean = 1000 * tally.seconds / max(tally.inputs, 1)
        failed = sum(tally.failures.values())
        print(f"{name:18} {tally.inputs:7} {tally.traced:7} {mean:6.1f} {tally.outcomes['ok']:6} {typed:7} {failed:6}"
              f"  {tally.worst_time[0]:5.3f} (#{tally.worst_time[1]:<6})"
              f" {tally.worst_memory[0]:5.3f} (#{tally.worst_memory[1]:<6}) {top}"
              + (f"  FAILURES {dict(tally.failures)}" if tally.failures else "")
              + (f"  known bugs {dict(tally.known)}" if tally.known else ""))
    known = sum(sum(t.known.values()) for t in tallies.values())
    print(f"total: {done} inputs, {failures} failures ({len(seen)} distinct signatures incl. known), {known} of known bugs")
    if args.corpus is not None:
        _save_corpus(args.corpus, outcomes_found, args.corpus_limit, 8192, args.minimize_seconds)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
