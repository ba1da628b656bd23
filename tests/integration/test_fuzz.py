"""A short fuzz pass (CI runs it on every change), the committed corpus replayed, the CLIs on mutated files.

The long runs are ``python3 -m tests.fuzz.run --inputs 100000``; this file
drives the same targets (``tests/fuzz/targets.py``) with hypothesis, a few
dozen inputs each, so that it stays well under a minute.  Every input must
end in ``ok`` or one of our ``VMStateError``s, with an offset, in linear time
and bounded memory.  Bugs found and reported but not fixed yet have a
reproducer in ``tests/fuzz/crashes`` and a ``strict`` xfail test at the end.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tracemalloc
from functools import cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices import DEFAULT_REGISTRY
from streams.convert import convert
from streams.files import open_stream
from streams.qemu import StreamReader, check_stream, summarize
from tests.fuzz.mutate import Mutator, Seed, all_seeds
from tests.fuzz.run import make_input
from tests.fuzz.targets import KNOWN_BUGS, TARGETS, HardStop, alarm, execute, memory_budget, warm_up
from tests.support.paths import FUZZ
from vmstate import LimitExceededError, MalformedError, VMStateError
from vmstate.diff import diff_files

CORPUS = FUZZ / "corpus"
CRASHES = FUZZ / "crashes"
FIXTURES = FUZZ.parent.parent / "compat_fixtures" / "streams"
#: the default run's share of them (the full counts are the ``slow`` set's)
QUICK_FRACTION = 5
#: hypothesis examples per target (the ``slow`` set); the default run takes a fifth
EXAMPLES = {"qemu": 40, "qemu-batch": 30, "qemu-work": 30, "roundtrip": 15, "snapshot-msgpack": 40, "snapshot-cbor": 40,
            "snapshot-json": 40, "diff": 30, "files": 40, "compat-diff": 30, "extract": 15, "convert-target": 15}


@cache
def seeds() -> dict[str, list[Seed]]:
    found = all_seeds()
    # lazy imports (deepdiff on the first differing section) and caches are not charged to the first traced input
    warm_up(list(TARGETS.values()), {kind: [s.data for s in group[:2]] for kind, group in found.items()})
    return found


def test_every_target_is_fuzzed_here() -> None:
    assert set(EXAMPLES) == set(TARGETS)


# ------------------------------------------------------------------ the short fuzz pass


def _fuzz_one(name: str, rng: object) -> None:
    target = TARGETS[name]
    mutator = Mutator(rng)  # type: ignore[arg-type]
    kind = mutator.rng.choice(target.seed_kinds)
    seed = mutator.rng.choice(seeds()[kind])
    mutant = mutator.mutate(seed, seeds()[kind])
    data = seed.build(bytes(mutant.payload), mutant.edits)
    result = execute(target, data, seed.data)
    failure = result.failure
    if failure is not None and failure.known is None:
        pytest.fail(f"{failure.summary}\nseed {seed.name}, ops {mutant.ops}, {len(data)} bytes\n{failure.detail}")


def _fuzz_pass(name: str, examples: int) -> None:
    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(st.randoms(use_true_random=False))
    def fuzz(rng: object) -> None:
        _fuzz_one(name, rng)

    fuzz()


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_short_fuzz_pass(name: str) -> None:
    _fuzz_pass(name, max(3, EXAMPLES[name] // QUICK_FRACTION))


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_fuzz_pass(name: str) -> None:
    _fuzz_pass(name, EXAMPLES[name])


# ------------------------------------------------------------------ the committed corpus


def _manifest() -> dict[str, dict[str, str]]:
    path = CORPUS / "MANIFEST.json"
    return json.loads(path.read_text()) if path.exists() else {}


def test_the_corpus_is_small_and_listed() -> None:
    files = sorted(p.name for p in CORPUS.glob("*.bin"))
    assert files == sorted(_manifest()), "every corpus file is in MANIFEST.json and the other way round"
    assert 10 <= len(files) <= 80
    assert all((CORPUS / name).stat().st_size <= 8192 for name in files)


@pytest.mark.parametrize("name", sorted(_manifest()))
def test_corpus_input_gives_its_outcome(name: str) -> None:
    entry = _manifest()[name]
    target = TARGETS[entry["target"]]
    original = next(s.data for group in seeds().values() for s in group if s.name == entry["seed"])
    result = execute(target, (CORPUS / name).read_bytes(), original)
    assert result.failure is None or result.failure.known is not None, result.failure.summary
    assert result.outcome == entry["outcome"]


# ------------------------------------------------------------------ the CLIs on mutated files


def _cli(program: str, *args: object) -> subprocess.CompletedProcess[str]:
    code = {"vmstate": "from vmstate.cli import main", "migration-diff": "from vmstate.diff.cli import main"}[program]
    return subprocess.run([sys.executable, "-c", f"import sys; {code}; sys.argv[0] = {program!r}; main()", *map(str, args)],
                          capture_output=True, text=True, timeout=120)


def _fails(action: object) -> bool:
    """True if the in-process equivalent of a command raises one of our errors."""
    try:
        action()  # type: ignore[operator]
    except VMStateError:
        return True
    return False


def _assert_one_line_or_none(done: subprocess.CompletedProcess[str], prefix: str, fails: bool) -> None:
    assert "Traceback" not in done.stderr, done.stderr
    if fails:
        assert done.returncode == 2, done.stderr
        [line] = done.stderr.splitlines()
        assert line.startswith(f"{prefix}: error: ")
    else:
        assert done.returncode in (0, 1) and not done.stderr, done.stderr


@pytest.fixture(scope="module")
def mutated_files(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Path, Path]]:
    """Mutated streams and snapshots, each with the unmutated file it came from."""
    directory = tmp_path_factory.mktemp("cli-fuzz")
    files = []
    for i in range(14):
        target = TARGETS["qemu-batch"] if i < 10 else TARGETS["snapshot-msgpack" if i % 2 else "snapshot-cbor"]
        seed, _, data = make_input(target, seeds(), 8, i)
        path, original = directory / f"mutated-{i}", directory / f"original-{i}"
        path.write_bytes(data)
        original.write_bytes(seed.data)
        files.append((path, original))
    return files


def test_vmstate_check_reports_each_bad_file_in_one_line(mutated_files: list[tuple[Path, Path]]) -> None:
    streams = [path for path, _ in mutated_files[:10]]

    def check(path: Path) -> None:
        with open_stream(path) as source, open_stream(path) as again:
            check_stream(source, again, descriptions=DEFAULT_REGISTRY)

    bad = [path for path in streams if _fails(lambda p=path: check(p))]
    assert 0 < len(bad) < len(streams)
    done = _cli("vmstate", "check", *streams)
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [line for line in done.stderr.splitlines() if line.startswith("vmstate: error: ")]
    assert [line.split(": ")[2] for line in done.stderr.splitlines()] == [str(p) for p in bad]
    assert done.returncode == 2


@pytest.mark.parametrize("i", range(0, 10, 2))
def test_vmstate_dump_of_a_mutated_stream(mutated_files: list[tuple[Path, Path]], i: int) -> None:
    path = mutated_files[i][0]

    def dump() -> None:
        with open_stream(path) as source:
            json.dumps(summarize(StreamReader(source, descriptions=DEFAULT_REGISTRY, batch_pages=True)))

    _assert_one_line_or_none(_cli("vmstate", "dump", "--json", path), "vmstate", _fails(dump))


@pytest.mark.parametrize(("i", "which"), [(1, 0), (3, 0), (5, 0), (10, 0), (11, 0), (12, 0), (13, 1)])
def test_vmstate_convert_of_a_mutated_file_writes_all_or_nothing(
    mutated_files: list[tuple[Path, Path]], tmp_path: Path, i: int, which: int
) -> None:
    path = mutated_files[i][which]  # (13, 1): an unmutated snapshot, which converts
    to = "qemu" if i >= 10 else "cbor"
    expected = tmp_path / "expected.out"
    fails = _fails(lambda: convert(path, expected, to, descriptions=DEFAULT_REGISTRY))
    target = tmp_path / "target.out"
    _assert_one_line_or_none(_cli("vmstate", "convert", "--to", to, path, target), "vmstate", fails)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    if fails:
        assert not target.exists()
    else:
        assert target.read_bytes() == expected.read_bytes()


@pytest.mark.parametrize("i", [0, 4, 7, 9, 12, 13])
def test_migration_diff_of_a_mutated_file(mutated_files: list[tuple[Path, Path]], i: int) -> None:
    path, original = mutated_files[i]
    fails = _fails(lambda: diff_files(original, path))
    _assert_one_line_or_none(_cli("migration-diff", original, path), "migration-diff", fails)


# ------------------------------------------------------------------ bugs found, reported, not fixed yet


def test_every_known_bug_has_its_reproducer() -> None:
    # each entry went when its xfail test below flipped: all are fixed
    assert KNOWN_BUGS == {}


def test_a_corrupt_gzip_stream_is_a_malformed_error() -> None:
    # found by the fuzzer: zlib.error escaped open_stream (fixed)
    with pytest.raises(MalformedError):
        with open_stream(CRASHES / "corrupt-deflate.mig.gz") as source:
            source.read()


def test_the_cli_reports_a_corrupt_gzip_stream_in_one_line() -> None:
    _assert_one_line_or_none(_cli("vmstate", "dump", CRASHES / "corrupt-deflate.mig.gz"), "vmstate", fails=True)


def test_a_decompression_error_names_an_offset(tmp_path: Path) -> None:
    damaged = tmp_path / "damaged.mig.xz"
    damaged.write_bytes((FIXTURES / "virt-7.2-bare-le-mmio.mig.xz").read_bytes()[:600])
    with pytest.raises(MalformedError) as caught:
        open_stream(damaged)
    assert caught.value.offset is not None


def test_reading_a_stream_file_allocates_in_proportion_to_it() -> None:
    path = CRASHES / "smallest-stream.mig"
    for record in StreamReader(open(path, "rb")):  # warm up
        pass
    tracemalloc.start()
    try:
        with open(path, "rb") as source:
            records = list(StreamReader(source))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(records) == 2
    assert peak <= memory_budget(os.path.getsize(path)), f"{peak} bytes at the peak for a {os.path.getsize(path)}-byte stream"


def test_diff_time_does_not_grow_with_the_ram_block_length() -> None:
    # two 73-byte streams: a 16 TiB RAM block with one zero page, at offset 0 and at the end; compare_tables
    # used to read every 4096-page chunk up to the highest page (fixed: it skips holes)
    try:
        with alarm(10.0):
            report = diff_files(CRASHES / "ram-block-16TiB-page-0.mig", CRASHES / "ram-block-16TiB-last-page.mig")
    except HardStop:
        pytest.fail("comparing two 73-byte streams took more than 10 s of CPU")
    assert [(r.differing_pages, r.ranges[0].kind, r.ranges[-1].kind) for r in report.ram] == [(2, "only_a", "only_b")]


def _page_beyond_any_file() -> LimitExceededError:
    try:
        with pytest.raises(LimitExceededError) as caught, alarm(5.0):
            diff_files(CRASHES / "ram-block-8EiB-page-0.mig", CRASHES / "ram-block-8EiB-last-page.mig")
    except HardStop:
        pytest.fail("comparing two 73-byte streams took more than 5 s of CPU")
    return caught.value


def test_a_page_offset_beyond_any_file_is_a_typed_error() -> None:
    # PageTable's pwrite used to raise OSError EFBIG (fixed: a limit on the page index)
    assert "0x7ffffffffffff" in str(_page_beyond_any_file())


def test_a_page_offset_beyond_any_file_names_where_it_is() -> None:
    error = _page_beyond_any_file()
    assert error.offset is not None and error.section == "ram"


def test_the_reproducers_are_valid_streams() -> None:
    names = ("ram-block-16TiB-page-0.mig", "ram-block-16TiB-last-page.mig", "ram-block-8EiB-last-page.mig", "smallest-stream.mig")
    for name in names:
        records = list(StreamReader(io.BytesIO((CRASHES / name).read_bytes())))
        assert len(records) in (2, 6), name
