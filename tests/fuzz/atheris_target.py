"""Coverage-guided fuzzing of the same targets with atheris (libFuzzer for Python).

atheris is optional and not a dependency of the project: ``pip install
atheris`` (wheels exist for CPython 3.11 on x86-64 Linux).  Then, from the
repository root::

    python3 -m tests.fuzz.atheris_target --write-seeds /tmp/seeds/qemu --target qemu
    python3 -m tests.fuzz.atheris_target --target qemu -- -runs=100000 -max_len=200000 -rss_limit_mb=2048 \\
        -timeout=10 -artifact_prefix=tests/fuzz/crashes/ /tmp/corpus/qemu /tmp/seeds/qemu

Everything after ``--`` goes to libFuzzer (a corpus directory it grows, then
seed directories it only reads).  An input that ends in anything but ``ok``
or one of our typed errors (``targets.execute``: untyped exception, missing
offset, property, time) is a crash: libFuzzer stops and writes it under
``-artifact_prefix``; replay it with the same command and the file instead of
the directories.  Memory is bounded by ``-rss_limit_mb`` here, not by
tracemalloc (too slow for coverage-guided rates); failures of bugs already
reported (``KNOWN_BUGS``) are not crashes.

For a snapshot target the input is the items region: its first four bytes
choose where the index item starts, the rest is re-sealed with a valid tail
(the checksum would stop everything else).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import atheris  # type: ignore[import-not-found]

# everything of the project these modules import is instrumented for coverage
with atheris.instrument_imports(include=["vmstate", "streams", "devices"]):
    from streams.snapshots import CODECS
    from streams.snapshots._container import PREAMBLE_SIZE

    from .mutate import Seed, all_seeds, reseal
    from .targets import TARGETS, Target, execute


class TargetCrash(Exception):
    """What libFuzzer sees when an input fails (the message says how)."""


def _kind(target: Target) -> str:
    return target.seed_kinds[0]


def build(target: Target, data: bytes) -> bytes:
    """The file the target reads, from a fuzzer input."""
    kind = _kind(target)
    if kind not in CODECS:
        return data
    content = data[4:] or b"\x00"
    return reseal(kind, content, PREAMBLE_SIZE + int.from_bytes(data[:4], "big") % len(content))


def seed_input(seed: Seed) -> bytes:
    """A seed as a fuzzer input (the inverse of ``build``)."""
    if seed.kind not in CODECS:
        return seed.payload
    return (seed.index_offset - PREAMBLE_SIZE).to_bytes(4, "big") + seed.payload


def main() -> None:
    argv = sys.argv[1:]
    ours, theirs = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    parser = argparse.ArgumentParser(prog="python3 -m tests.fuzz.atheris_target")
    parser.add_argument("--target", choices=sorted(TARGETS), default="qemu")
    parser.add_argument("--write-seeds", type=Path, metavar="DIR", help="write the seed inputs of --target to DIR and exit")
    args = parser.parse_args(ours)
    target = TARGETS[args.target]
    seeds = all_seeds()[_kind(target)]
    if args.write_seeds:
        args.write_seeds.mkdir(parents=True, exist_ok=True)
        for seed in seeds:
            data = seed_input(seed)
            (args.write_seeds / hashlib.sha1(data).hexdigest()).write_bytes(data)
        return
    original = seeds[0].data

    def one_input(data: bytes) -> None:
        result = execute(target, build(target, data), original, trace=False)
        if result.failure is not None and result.failure.known is None:
            raise TargetCrash(f"{result.failure.summary}\n{result.failure.detail}")

    atheris.Setup([sys.argv[0], *theirs], one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
