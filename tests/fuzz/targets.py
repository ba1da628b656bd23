"""What the fuzzer feeds its inputs to, and what it checks on every input.

Each target reads one input the way a user of the project would; ``execute``
runs it and turns what happened into an outcome (``ok`` or the name of the
``VMStateError`` raised) or a ``Failure``:

* ``untyped``: any other exception escaped (a bug, whatever the input);
* ``no-offset``: a ``DecodeError`` that does not say where (the style guide's
  rule; the QEMU reader's vmdesc trailer errors are exempt, as in
  tests/streams/qemu/test_hostile.py: the JSON is parsed as a whole);
* ``property``: something the README promises did not hold (a stream that
  decodes re-encodes to the same bytes; a snapshot that loads can be written
  as a QEMU stream; ...);
* ``time``: more than ``TIME_BASE + TIME_PER_BYTE * size`` seconds (checked
  again without tracing before it counts), or the hard alarm went off;
* ``memory``: a tracemalloc peak over ``MEMORY_BASE + MEMORY_FACTOR * size``,
  and never over ``MEMORY_CAP`` whatever the size (issue 12: no input may
  take more than 300 MB).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import stat
import tempfile
import time
import traceback
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from devices import DEFAULT_REGISTRY
from streams.convert import convert
from streams.files import open_stream
from streams.qemu import StreamReader, StreamWriter, check_stream, summarize
from streams.qemu.extract import extract_stream
from streams.snapshots import SnapshotReader, UnsafeTargetError, read_index, read_records, write_records
from vmstate.compat import SchemaSet, compare_sets, load_schema, schema_from_json
from vmstate.compat._json_input import parse_json
from vmstate.diff import diff_files
from vmstate.diff.compare import compare_images
from vmstate.diff.image import StreamImage, collect
from vmstate.diff.render import render_summary, render_text, report_to_json
from vmstate.errors import DecodeError, VMStateError

__all__ = [
    "MEMORY_BASE",
    "MEMORY_FACTOR",
    "TARGETS",
    "TIME_BASE",
    "TIME_PER_BYTE",
    "KNOWN_BUGS",
    "Failure",
    "PropertyViolation",
    "Result",
    "Target",
    "HardStop",
    "alarm",
    "execute",
    "warm_up",
]

#: CPU seconds any input may take, plus per byte of input: a generous linear budget (parsing runs at ~0.2 us/byte)
TIME_BASE = 2.0
TIME_PER_BYTE = 20e-6
#: failures of bugs already reported, by signature -> the report; each has a strict-xfail reproducer in
#: tests/integration/test_fuzz.py, so fixing the bug makes that test fail until its entry here and its marker go
KNOWN_BUGS: dict[str, str] = {}
#: the alarm that stops a runaway input, as a multiple of its budget
HARD_STOP = 5.0
#: bytes any input may allocate at its peak, plus a multiple of its size
MEMORY_BASE = 16 << 20
MEMORY_FACTOR = 40
MEMORY_CAP = 300 << 20
_ROOT = Path(__file__).resolve().parents[2]


class PropertyViolation(AssertionError):
    """A documented property of the code under test does not hold for this input."""


class HardStop(BaseException):
    """Raised by the alarm; a BaseException so that no ``except Exception`` in the code under test swallows it."""


@dataclass(frozen=True)
class Target:
    """One way of reading an input; ``seed_kinds`` names the seeds it is fed (``qemu`` or a codec)."""

    name: str
    seed_kinds: tuple[str, ...]
    #: called with the input and the unmutated seed input it came from
    run: Callable[[bytes, bytes], None]


@dataclass(frozen=True)
class Failure:
    """A bug: what kind, one line saying what, the traceback, and a signature for deduplication."""

    kind: str
    summary: str
    detail: str
    signature: str
    #: the bug report, when this is a failure already reported (``KNOWN_BUGS``)
    known: str | None = None


@dataclass(frozen=True)
class Result:
    """What one input did."""

    outcome: str
    elapsed: float  #: CPU seconds
    peak: int | None
    failure: Failure | None


def _reader(data: bytes, batch_pages: bool) -> StreamReader:
    return StreamReader(io.BytesIO(data), descriptions=DEFAULT_REGISTRY, batch_pages=batch_pages)


# ---------------------------------------------------------------- targets


def _qemu(data: bytes, _original: bytes) -> None:
    for _ in _reader(data, False):
        pass


class _Counted(io.BytesIO):
    """An input that counts the bytes read from it."""

    bytes_read = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.bytes_read += len(data)
        return data


#: candidate boundaries the footer-less scan may check per input byte, at most (one per byte was issue 12's 1 MB/s)
SCAN_CHECKS_PER_BYTE = 0.25
#: bytes read from the input per input byte, at most (plus a window): the reader reads each byte about once
READS_PER_BYTE = 3


def _qemu_work(data: bytes, _original: bytes) -> None:
    """Plain reading, its work counted: bytes read from the input and boundary candidates the scan checks."""
    from streams.qemu import scan

    checks = 0
    plausible = scan._plausible_start

    def counted(*args: object) -> bool:
        nonlocal checks
        checks += 1
        return plausible(*args)  # type: ignore[arg-type]

    source = _Counted(data)
    scan._plausible_start = counted  # type: ignore[assignment]
    try:
        for _ in StreamReader(source, descriptions=DEFAULT_REGISTRY, batch_pages=True):
            pass
    finally:
        scan._plausible_start = plausible
    if checks > SCAN_CHECKS_PER_BYTE * len(data) + 1000:
        raise PropertyViolation(f"the section scan checked {checks} candidates in {len(data)} bytes")
    if source.bytes_read > READS_PER_BYTE * len(data) + (4 << 20):
        raise PropertyViolation(f"read {source.bytes_read} bytes of a {len(data)}-byte input")


def _qemu_batch(data: bytes, _original: bytes) -> None:
    """What ``vmstate dump --json`` does: batched pages, summarized with the blocks' digests, as JSON."""
    from streams.qemu.block_digest import BlockDigests

    reader = _reader(data, True)
    digests = BlockDigests(lambda: reader.page_size, lambda: reader.offset)
    json.dumps([summarize(digests.tee(reader)), digests.results()])


def _roundtrip(data: bytes, _original: bytes) -> None:
    """Whatever decodes re-encodes to the same bytes, through the writer, ``check_stream`` and a snapshot."""
    records = list(_reader(data, False))
    out = io.BytesIO()
    StreamWriter(out).write_all(records)
    if out.getvalue() != data:
        encoded = out.getvalue()
        first = next((i for i, (a, b) in enumerate(zip(encoded, data)) if a != b), min(len(encoded), len(data)))
        raise PropertyViolation(f"decoded, but re-encodes differently from {first:#x} ({len(encoded)} vs {len(data)} bytes)")
    report = check_stream(io.BytesIO(data), io.BytesIO(data), descriptions=DEFAULT_REGISTRY)
    if not report.identical:
        raise PropertyViolation(f"check_stream (batched pages) reports a difference at {report.first_difference}")
    codec = ("msgpack", "cbor", "json")[len(data) % 3]
    snapshot = io.BytesIO()
    try:
        write_records(records, snapshot, codec=codec)
    except VMStateError as error:
        raise PropertyViolation(f"decoded, but cannot be saved as a {codec} snapshot: {error}") from None
    back = list(read_records(io.BytesIO(snapshot.getvalue()), descriptions=DEFAULT_REGISTRY))
    if back != records:
        raise PropertyViolation(f"a {codec} snapshot of it reads back different records")


def _snapshot(data: bytes, _original: bytes) -> None:
    """Read every record, then the index alone; what loads must be writable as QEMU bytes."""
    reader = SnapshotReader(io.BytesIO(data), descriptions=DEFAULT_REGISTRY)
    records = list(reader)
    index = read_index(io.BytesIO(data))
    if index != reader.index:
        raise PropertyViolation("read_index disagrees with the index the records were checked against")
    try:
        StreamWriter(io.BytesIO()).write_all(records)
    except VMStateError as error:
        raise PropertyViolation(f"loaded, but cannot be written as a QEMU stream: {error}") from None


class _Images:
    """The diff image of each unmutated input, collected once."""

    @staticmethod
    @lru_cache(maxsize=64)
    def of(data: bytes) -> StreamImage:
        return _image(data)


def _image(data: bytes) -> StreamImage:
    reader = _reader(data, True)
    return collect("input", "qemu", reader, page_size=lambda: reader.page_size)


def _diff(data: bytes, original: bytes) -> None:
    """``migration-diff ORIGINAL INPUT`` without the files: collect, compare, render as text, summary and JSON."""
    image = _image(data)
    try:
        report = compare_images(_Images.of(original), image)
        from vmstate.diff.sources import display_kinds

        for line in [*render_text(report, table=display_kinds()), *render_summary(report)]:
            if not line.isprintable():
                raise PropertyViolation(f"a text line of the diff is not printable: {line!r}")
        json.dumps(report_to_json(report))
    finally:
        image.close()
    if data == original and not report.identical:
        raise PropertyViolation("an input differs from itself")


def _files(data: bytes, original: bytes) -> None:
    """A compressed stream file through what ``vmstate dump``, ``vmstate check`` and ``migration-diff`` do with it.

    All three read it the same way (``open_stream``, batched pages), so they
    must agree on whether it can be read; what ``check`` reads must re-encode
    identically.  (Which error they raise may differ: an empty file is a
    truncated stream to ``dump`` and neither a stream nor a snapshot to
    ``diff``.)
    """
    with tempfile.TemporaryDirectory(prefix="vmstate-fuzz-") as tmp:
        path, reference = Path(tmp) / "input", Path(tmp) / "original"
        path.write_bytes(data)
        reference.write_bytes(original)
        errors: list[VMStateError | None] = []
        for step in ("dump", "check", "diff"):
            try:
                if step == "dump":
                    with open_stream(path) as source:
                        json.dumps(summarize(StreamReader(source, descriptions=DEFAULT_REGISTRY, batch_pages=True)))
                elif step == "check":
                    with open_stream(path) as source, open_stream(path) as again:
                        if not check_stream(source, again, descriptions=DEFAULT_REGISTRY).identical:
                            raise PropertyViolation("check_stream: decoded but does not re-encode identically")
                else:
                    report = diff_files(reference, path)
                    if data == original and not report.identical:
                        raise PropertyViolation("an input differs from itself")
                errors.append(None)
            except VMStateError as error:
                errors.append(error)
        if len({e is None for e in errors}) > 1:  # the error classes may differ: diff tells formats apart first
            raise PropertyViolation(f"dump, check and diff disagree: {[type(e).__name__ for e in errors]}")
        if errors[0] is not None:
            raise errors[0]


class _Schemas:
    """The schema set of each unmutated schema input, read once."""

    @staticmethod
    @lru_cache(maxsize=8)
    def of(data: bytes) -> SchemaSet:
        return schema_from_json(parse_json(data, "original"), "original", checked=True)


def _compat_diff(data: bytes, original: bytes) -> None:
    """``vmstate compat diff ORIGINAL INPUT`` without the files: read, compare, render as text and JSON."""
    with tempfile.TemporaryDirectory(prefix="vmstate-fuzz-") as tmp:
        path = Path(tmp) / "input.json"
        path.write_bytes(data)
        new = load_schema(path)
    report = compare_sets(_Schemas.of(original), new)
    report.render("warning", show_info=True)
    json.dumps(report.as_json("warning"))
    if data == original and report.exit_code("warning") != 0:
        raise PropertyViolation("a schema is incompatible with itself")


def _extract(data: bytes, _original: bytes) -> None:
    """``vmstate extract INPUT DIR``: on success DIR holds state.json and every block's file; on error nothing."""
    with tempfile.TemporaryDirectory(prefix="vmstate-fuzz-") as tmp:
        target = Path(tmp) / "out"
        try:
            summary = extract_stream(io.BytesIO(data), target, descriptions=DEFAULT_REGISTRY)
        except VMStateError:
            left = sorted(p.name for p in Path(tmp).iterdir())
            if left:
                raise PropertyViolation(f"extract failed but left {left}") from None
            raise
        left = sorted(p.name for p in Path(tmp).iterdir())
        files = sorted(f"ram/{p.name}" for p in (target / "ram").iterdir())
        if left != ["out"] or sorted(summary["ram_files"].values()) != files:
            raise PropertyViolation(f"extract succeeded but left {left}, block files {files}")


#: what ``convert``'s TARGET may be: regular files are replaced, symlinks to them written through, the rest refused
_OUTPUT_KINDS = ("absent", "regular", "link-to-regular", "dangling-link", "fifo", "directory", "link-to-fifo")


def _make_output(directory: Path, kind: str) -> Path:
    target = directory / "out.msgpack"
    if kind == "regular":
        target.write_bytes(b"old")
    elif kind == "link-to-regular":
        (directory / "real").write_bytes(b"old")
        target.symlink_to(directory / "real")
    elif kind == "dangling-link":
        target.symlink_to(directory / "nowhere")
    elif kind in ("fifo", "link-to-fifo"):
        os.mkfifo(directory / "fifo")
        if kind == "fifo":
            os.rename(directory / "fifo", target)
        else:
            target.symlink_to(directory / "fifo")
    elif kind == "directory":
        target.mkdir()
    return target


def _convert_target(data: bytes, _original: bytes) -> None:
    """``vmstate convert INPUT TARGET`` into every kind of TARGET: only regular files are ever replaced."""
    with tempfile.TemporaryDirectory(prefix="vmstate-fuzz-") as tmp:
        source = Path(tmp) / "input.mig"
        source.write_bytes(data)
        kind = _OUTPUT_KINDS[len(data) % len(_OUTPUT_KINDS)]
        outputs = Path(tmp) / "outputs"
        outputs.mkdir()
        target = _make_output(outputs, kind)
        before = {p.name: (p.lstat().st_mode, p.lstat().st_ino) for p in outputs.iterdir()}
        try:
            convert(source, target, "msgpack", descriptions=DEFAULT_REGISTRY)
        except UnsafeTargetError:
            if kind in ("absent", "regular", "link-to-regular"):
                raise PropertyViolation(f"convert refused a {kind} target") from None
            after = {p.name: (p.lstat().st_mode, p.lstat().st_ino) for p in outputs.iterdir()}
            if after != before:
                raise PropertyViolation(f"convert refused a {kind} target but changed it: {before} -> {after}") from None
            raise
        except VMStateError:
            if [p.name for p in outputs.iterdir() if p.name.endswith(".tmp")]:
                raise PropertyViolation("a failed convert left a temporary file") from None
            raise
        if kind not in ("absent", "regular", "link-to-regular"):
            raise PropertyViolation(f"convert replaced a {kind} target")
        written = outputs / "real" if kind == "link-to-regular" else target
        if not stat.S_ISREG(written.lstat().st_mode) or (kind == "link-to-regular" and not target.is_symlink()):
            raise PropertyViolation(f"convert into a {kind} target did not write a regular file through it")


_SNAPSHOTS = ("msgpack", "cbor", "json")
TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target("qemu", ("qemu",), _qemu),
        Target("qemu-batch", ("qemu",), _qemu_batch),
        Target("qemu-work", ("qemu",), _qemu_work),
        Target("roundtrip", ("qemu",), _roundtrip),
        *(Target(f"snapshot-{codec}", (codec,), _snapshot) for codec in _SNAPSHOTS),
        Target("diff", ("qemu",), _diff),
        Target("files", ("gzip", "xz"), _files),
        Target("compat-diff", ("schema",), _compat_diff),
        Target("extract", ("qemu",), _extract),
        Target("convert-target", ("qemu",), _convert_target),
    )
}


# ---------------------------------------------------------------- running one input


def warm_up(targets: list[Target], inputs: dict[str, list[bytes]]) -> None:
    """Run each target on each seed input, and against another, untraced.

    So lazy imports and caches (deepdiff on the first differing section) are not charged to a fuzz input.
    """
    for target in targets:
        for kind in target.seed_kinds:
            for data in inputs[kind]:
                execute(target, data, data, trace=False)
                execute(target, data, inputs[kind][0], trace=False)



def time_budget(size: int) -> float:
    return TIME_BASE + TIME_PER_BYTE * size


def memory_budget(size: int) -> int:
    return min(MEMORY_BASE + MEMORY_FACTOR * size, MEMORY_CAP)


#: the wall-clock backstop of ``alarm`` (an input blocked, not computing), as a multiple of its CPU seconds
WALL_BACKSTOP = 4.0


@contextlib.contextmanager
def alarm(seconds: float) -> Iterator[None]:
    """Raise ``HardStop`` in this (main) thread after ``seconds`` of this process's CPU time (or, as a backstop,
    ``WALL_BACKSTOP`` times as many seconds of wall time); a no-op elsewhere.

    CPU time, not wall time: the budgets judge the input's cost, not how busy the machine is."""

    def fire(_signum: int, _frame: object) -> None:
        raise HardStop

    try:
        previous = {sig: signal.signal(sig, fire) for sig in (signal.SIGPROF, signal.SIGALRM)}
    except ValueError:  # not the main thread
        yield
        return
    signal.setitimer(signal.ITIMER_PROF, seconds)
    signal.setitimer(signal.ITIMER_REAL, seconds * WALL_BACKSTOP)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.setitimer(signal.ITIMER_REAL, 0)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _where(error: BaseException) -> tuple[str, int, str]:
    """The innermost frame in the project's code (not in tests or libraries): file, line, function."""
    frames = traceback.extract_tb(error.__traceback__)
    ours = [f for f in frames if f.filename.startswith(str(_ROOT)) and "/tests/" not in f.filename] or frames
    if not ours:
        return "?", 0, "?"
    frame = ours[-1]
    name = str(Path(frame.filename).relative_to(_ROOT)) if frame.filename.startswith(str(_ROOT)) else frame.filename
    return name, frame.lineno or 0, frame.name


def _failure(kind: str, error: BaseException, text: str) -> Failure:
    file, line, function = _where(error)
    detail = "".join(traceback.format_exception(error))
    signature = f"{kind}|{type(error).__name__}|{file} {function}"  # no line number: it survives unrelated edits
    return Failure(kind, f"{kind}: {text} [{file}:{line} {function}]", detail, signature, KNOWN_BUGS.get(signature))


def _context_missing(target: Target, error: DecodeError) -> bool:
    if error.offset is not None:
        return False
    # vmdesc JSON is parsed as a whole: its errors name the section only (as tests/streams/qemu/test_hostile.py accepts)
    return not (error.section == "vmdesc" and not target.name.startswith("snapshot"))


def _run_once(target: Target, data: bytes, original: bytes, trace: bool) -> tuple[str, float, int | None, Failure | None]:
    outcome, failure = "ok", None
    if trace:
        tracemalloc.start()
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
    start = time.process_time()  # CPU seconds: the budget is the input's cost, whatever else the machine runs
    try:
        with alarm(HARD_STOP * time_budget(len(data))):
            target.run(data, original)
    except VMStateError as error:
        outcome = type(error).__name__
        if isinstance(error, DecodeError) and _context_missing(target, error):
            failure = _failure("no-offset", error, f"{outcome} without an offset: {error}")
    except PropertyViolation as error:
        failure = _failure("property", error, str(error))
    except HardStop as error:
        took = time.process_time() - start
        failure = _failure("time", error, f"stopped after {took:.1f} s of CPU (budget {time_budget(len(data)):.1f} s)")
    except Exception as error:  # noqa: BLE001 - anything else is what the fuzzer looks for
        failure = _failure("untyped", error, f"{type(error).__name__}: {str(error)[:200]}")
    elapsed = time.process_time() - start
    peak = None
    if trace:
        peak = tracemalloc.get_traced_memory()[1] - base
        tracemalloc.stop()
    return outcome, elapsed, peak, failure


def execute(target: Target, data: bytes, original: bytes, *, trace: bool = True) -> Result:
    """Run ``target`` on ``data``; with ``trace``, measure its peak allocation with tracemalloc."""
    outcome, elapsed, peak, failure = _run_once(target, data, original, trace)
    if failure is None and elapsed > time_budget(len(data)) and trace:
        # tracing slows allocation-heavy code several times over: time it again without
        outcome, elapsed, _, failure = _run_once(target, data, original, False)
    if failure is None and elapsed > time_budget(len(data)):
        failure = Failure("time", f"time: {elapsed:.2f} s of CPU for {len(data)} bytes (budget {time_budget(len(data)):.2f} s)", "",
                          f"time|{target.name}")
    if failure is None and peak is not None and peak > memory_budget(len(data)):
        text = f"memory: peak {peak} bytes for {len(data)} bytes of input (budget {memory_budget(len(data))})"
        failure = Failure("memory", text, "", f"memory|{target.name}|{outcome}")
    return Result(outcome, elapsed, peak, failure)
