"""Crash injection: a child process writing snapshots is SIGKILLed at random points.

Whenever it dies, the target holds a complete, verified snapshot: the old one
byte for byte, or one the child finished.  Never a torn file.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from devices import DEFAULT_REGISTRY
from streams.qemu import RamPage
from streams.snapshots import read_records, save_snapshot
from tests.support.paths import ROOT

PAGES = 2048  # 8 MiB a snapshot: long enough to be killed in the middle of one
ROUNDS = 8

CHILD = """
import sys
from tests.support.synthetic import ram_records as records
from streams.snapshots import save_snapshot

target, codec, generation, pages = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
if generation == 0:
    save_snapshot(target, records(0, pages), codec=codec)
    sys.exit(0)
print("ready", flush=True)
while True:
    save_snapshot(target, records(generation, pages), codec=codec)
    print(generation, flush=True)
    generation += 1
"""


def _child(target: Path, codec: str, generation: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(target), codec, str(generation), str(PAGES)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )


def _generation(target: Path) -> int:
    """Read and verify the whole snapshot; every page must come from one writer's generation."""
    with open(target, "rb") as file:
        pages = [r.data for r in read_records(file, descriptions=DEFAULT_REGISTRY) if isinstance(r, RamPage)]
    assert len(pages) == PAGES
    generations = {page[:8] for page in pages}
    assert len(generations) == 1 and all(page == page[:8] * 512 for page in pages)
    return int.from_bytes(generations.pop(), "big")


def test_a_killed_writer_never_leaves_a_torn_snapshot(tmp_path: Path) -> None:
    target = tmp_path / "vm.snap"
    first = _child(target, "msgpack", 0)
    assert first.wait(timeout=60) == 0, first.stderr.read() if first.stderr else ""
    seed = random.SystemRandom().randrange(1 << 32)
    rng = random.Random(seed)
    torn_writes = 0
    for round_ in range(ROUNDS):
        before = target.read_bytes()
        before_generation = _generation(target)
        start = 1000 * (round_ + 1)
        child = _child(target, ("msgpack", "cbor", "json")[round_ % 3], start)
        assert child.stdout is not None
        assert child.stdout.readline() == "ready\n", child.stderr.read() if child.stderr else ""
        if round_ % 2:
            # kill at a random point inside a write: once a temporary file exists
            deadline = time.monotonic() + 30
            while not any(p.name.endswith(".tmp") for p in tmp_path.iterdir()) and time.monotonic() < deadline:
                time.sleep(0.001)
            time.sleep(rng.uniform(0.0, 0.02))
        else:
            time.sleep(rng.uniform(0.0, 0.5))  # anywhere
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        finished = [int(line) for line in child.stdout.read().split()]
        child.stdout.close()
        assert child.stderr is not None
        child.stderr.close()
        leftovers = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
        torn_writes += bool(leftovers)
        for leftover in leftovers:  # what a crash leaves: a temporary file beside the target
            assert leftover.name.startswith(".vm.snap.")
            leftover.unlink()
        generation = _generation(target)
        context = f"seed {seed}, round {round_}: {finished[-3:]} finished, target holds {generation}"
        if generation == before_generation:
            assert target.read_bytes() == before, context
            assert not finished, context  # a finished save would have replaced it
        else:
            # the last save the child reported, or one it finished but was killed before reporting
            last = finished[-1] if finished else start - 1
            assert generation in (last, last + 1) and generation >= start, context
    # The kills did land in the middle of writes (so the test could have caught a torn file).
    assert torn_writes >= 1, f"seed {seed}: no kill hit a write in progress"


def test_a_stale_temporary_file_does_not_block_the_next_save(tmp_path: Path) -> None:
    # A stale temporary file from a crash does not stop the next save.
    target = tmp_path / "vm.snap"
    (tmp_path / ".vm.snap.abc123.tmp").write_bytes(b"half a snapshot")
    save_snapshot(target, [], codec="json")
    assert target.read_bytes().startswith(b"\x89VMS")
    with open(target, "rb") as file:
        assert list(read_records(file, descriptions=DEFAULT_REGISTRY)) == []
