"""Faults while writing or reading: a killed writer, a full disk, a stream cut mid-page.

Each ends with a typed error (an ``OSError`` for the disk: the project's API
lets it through and the CLI prints it as one line, exit 2) and leaves any
existing target file as it was, with no temporary file behind.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devices import DEFAULT_REGISTRY
from streams.convert import convert
from streams.qemu import (
    RamPage,
    RamPageRun,
    RamZero,
    StreamReader,
    StreamRecord,
    StreamWriter,
)
from streams.snapshots import atomic_write, save_snapshot, write_records
from tests.support import synthetic
from vmstate import TruncatedError

PAGES = 2048  # 8 MiB: long enough to be killed or to fill a small disk in the middle of a write
CLI = "import sys; from vmstate.cli import main; sys.argv[0] = 'vmstate'; main()"


def ram_records(generation: int, pages: int = PAGES) -> Iterator[StreamRecord]:
    """A minimal QEMU stream: one RAM block whose every page holds ``generation``."""
    return synthetic.ram_records(generation, pages)


def stream_bytes(generation: int, pages: int = PAGES) -> bytes:
    out = io.BytesIO()
    StreamWriter(out).write_all(ram_records(generation, pages))
    return out.getvalue()


def snapshot_bytes(generation: int, pages: int = PAGES, codec: str = "msgpack") -> bytes:
    out = io.BytesIO()
    write_records(ram_records(generation, pages), out, codec=codec)
    return out.getvalue()


def temporaries(directory: Path) -> list[Path]:
    return [p for p in directory.iterdir() if p.name.endswith(".tmp")]


def run_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", CLI, *map(str, args)], capture_output=True, text=True, timeout=120)


# ------------------------------------------------------------- (a) SIGKILL of the writer


@pytest.mark.parametrize(("source_kind", "target_name"), [("snapshot", "vm.mig"), ("stream", "vm.msgpack")])
def test_a_killed_convert_leaves_the_old_target_or_the_complete_new_one(
    tmp_path: Path, source_kind: str, target_name: str
) -> None:
    new = stream_bytes(2) if target_name.endswith(".mig") else snapshot_bytes(2)
    old = stream_bytes(1, 64) if target_name.endswith(".mig") else snapshot_bytes(1, 64)
    source = tmp_path / "source"
    source.write_bytes(snapshot_bytes(2) if source_kind == "snapshot" else stream_bytes(2))
    target = tmp_path / target_name
    seed = random.SystemRandom().randrange(1 << 32)
    rng = random.Random(seed)
    torn = 0
    for round_ in range(12):
        target.write_bytes(old)
        child = subprocess.Popen([sys.executable, "-c", CLI, "convert", str(source), str(target)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while not temporaries(tmp_path) and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.0005)
        time.sleep(rng.uniform(0.0, 0.03))
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        leftovers = temporaries(tmp_path)
        torn += bool(leftovers)
        for leftover in leftovers:  # a killed writer leaves its temporary file beside the target, nothing else
            assert leftover.name.startswith(f".{target_name}.")
            leftover.unlink()
        content = target.read_bytes()
        assert content in (old, new), f"seed {seed}, round {round_}: target holds {len(content)} bytes, neither old nor new"
        if torn >= 2 and round_ >= 3:
            break
    assert torn >= 1, f"seed {seed}: no kill landed in the middle of a write"


# ------------------------------------------------------------- (b) a full disk


class _QuotaFile(io.FileIO):
    """A file that takes ``quota`` bytes, then fails as a full disk does (a short write, then ENOSPC)."""

    def __init__(self, fd: int, quota: int) -> None:
        super().__init__(fd, "wb")
        self.left = quota

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        if not self.left:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written = super().write(view[: self.left])
        self.left -= written or 0
        return written or 0


@contextlib.contextmanager
def full_disk(monkeypatch: pytest.MonkeyPatch, quota: int) -> Iterator[None]:
    """Files opened for writing through ``os.fdopen`` (as ``atomic_write`` does) hold ``quota`` bytes at most."""
    real = os.fdopen

    def fdopen(fd: int, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if mode == "wb":
            raw = _QuotaFile(fd, quota)
            return raw if kwargs.get("buffering", args[0] if args else -1) == 0 else io.BufferedWriter(raw)
        return real(fd, mode, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(os, "fdopen", fdopen)
        yield


@pytest.fixture
def old_target(tmp_path: Path) -> Path:
    """An existing file the failed writes must leave alone."""
    directory = tmp_path / "out"
    directory.mkdir()
    path = directory / "vm.msgpack"
    path.write_bytes(snapshot_bytes(1, 16))
    return path


WRITES = {
    "save_snapshot": lambda src, dst: save_snapshot(dst, ram_records(3)),
    "convert-to-qemu": lambda src, dst: convert(src["snapshot"], dst, "qemu", descriptions=DEFAULT_REGISTRY),
    "convert-to-cbor": lambda src, dst: convert(src["stream"], dst, "cbor", descriptions=DEFAULT_REGISTRY),
    "convert-snapshot-to-json": lambda src, dst: convert(src["snapshot"], dst, "json", descriptions=DEFAULT_REGISTRY),
    "atomic_write": lambda src, dst: _write_through_atomic(dst),
}


def _write_through_atomic(path: Path) -> None:
    with atomic_write(path) as sink:
        for _ in range(64):
            sink.write(bytes(64 << 10))


@pytest.fixture
def sources(tmp_path: Path) -> dict[str, Path]:
    paths = {"stream": tmp_path / "source.mig", "snapshot": tmp_path / "source.msgpack"}
    paths["stream"].write_bytes(stream_bytes(3, 512))
    paths["snapshot"].write_bytes(snapshot_bytes(3, 512))
    return paths


@pytest.mark.parametrize("write", sorted(WRITES))
def test_enospc_fails_with_oserror_and_keeps_the_old_file(
    monkeypatch: pytest.MonkeyPatch, old_target: Path, sources: dict[str, Path], write: str
) -> None:
    before = old_target.read_bytes()
    with full_disk(monkeypatch, 256 << 10), pytest.raises(OSError) as caught:
        WRITES[write](sources, old_target)
    assert caught.value.errno == errno.ENOSPC
    assert caught.value.filename == str(old_target)  # the error names the file, not an anonymous temporary
    assert old_target.read_bytes() == before
    assert sorted(p.name for p in old_target.parent.iterdir()) == [old_target.name]


def test_the_cli_reports_a_full_disk_in_one_line(tmp_path: Path, sources: dict[str, Path]) -> None:
    target = tmp_path / "vm.mig"
    target.write_bytes(b"old")
    program = (
        "import io, os, sys\n"
        "real = os.fdopen\n"
        "class Full(io.FileIO):\n"
        "    def write(self, data):\n"
        "        raise OSError(28, os.strerror(28))\n"
        "def fdopen(fd, mode='r', *a, **k):\n"
        "    return io.BufferedWriter(Full(fd, 'wb')) if mode == 'wb' else real(fd, mode, *a, **k)\n"
        "os.fdopen = fdopen\n"
        f"{CLI}\n"
    )
    done = subprocess.run([sys.executable, "-c", program, "convert", str(sources["snapshot"]), str(target)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [f"vmstate: error: {target}: {os.strerror(errno.ENOSPC)}"]
    assert target.read_bytes() == b"old" and not temporaries(tmp_path)


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A real 256 KiB tmpfs, where the container lets us mount one (we are root in CI's container)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        pytest.skip("cannot run mount")
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True, timeout=30)


def test_a_real_full_disk_keeps_the_old_file(small_tmpfs: Path, sources: dict[str, Path]) -> None:
    target = small_tmpfs / "vm.mig"
    old = stream_bytes(1, 16)  # 64 KiB of the 256
    target.write_bytes(old)
    for to in ("qemu", "msgpack"):
        with pytest.raises(OSError) as caught:
            convert(sources["snapshot"] if to == "qemu" else sources["stream"], target, to, descriptions=DEFAULT_REGISTRY)
        assert caught.value.errno == errno.ENOSPC
        assert target.read_bytes() == old and sorted(p.name for p in small_tmpfs.iterdir()) == ["vm.mig"]
    with pytest.raises(OSError) as caught:
        save_snapshot(target, ram_records(4))
    assert caught.value.errno == errno.ENOSPC
    done = run_cli("convert", sources["snapshot"], target)
    # the line names the file that did not fit (issue 12, 3.15: it used to say only "No space left on device")
    assert done.returncode == 2 and done.stderr.splitlines() == [f"vmstate: error: {target}: {os.strerror(errno.ENOSPC)}"], done.stderr
    assert target.read_bytes() == old and sorted(p.name for p in small_tmpfs.iterdir()) == ["vm.mig"]


# ------------------------------------------------------------- (c) a stream cut mid-page


PageSpan = tuple[int, int, RamPage | RamPageRun | RamZero]


def _page_spans(data: bytes, batch_pages: bool) -> list[PageSpan]:
    """(start, end, record) of every RAM page record (single pages, zero pages, runs) of a stream."""
    spans: list[PageSpan] = []
    writer = StreamWriter(io.BytesIO())
    for record in StreamReader(io.BytesIO(data), descriptions=DEFAULT_REGISTRY, batch_pages=batch_pages):
        start = writer.offset
        writer.write(record)
        if isinstance(record, (RamPage, RamPageRun, RamZero)):
            spans.append((start, writer.offset, record))
    return spans


def _pages_before_error(data: bytes, batch_pages: bool) -> tuple[list[int], TruncatedError]:
    """The offsets of the pages read before the stream ended, and the error."""
    pages: list[int] = []
    with pytest.raises(TruncatedError) as caught:
        for record in StreamReader(io.BytesIO(data), descriptions=DEFAULT_REGISTRY, batch_pages=batch_pages):
            if isinstance(record, (RamPage, RamZero)):
                pages.append(record.offset)
            elif isinstance(record, RamPageRun):
                pages.extend(offset for offset, _ in record.pages())
    return pages, caught.value


@pytest.fixture(scope="module")
def real_stream() -> bytes:
    from tests.support.paths import CORPUS

    return (CORPUS / "pc-7.2-virtio-rng-legacy.mig").read_bytes()


@pytest.fixture(scope="module")
def single_pages(real_stream: bytes) -> list[PageSpan]:
    return _page_spans(real_stream, False)


@pytest.mark.parametrize("into", [1, 2048, 4095])
def test_a_cut_inside_a_page_is_a_truncation_in_ram_at_that_page(
    real_stream: bytes, single_pages: list[PageSpan], into: int
) -> None:
    n, (start, end, _) = next((n, s) for n, s in enumerate(single_pages) if isinstance(s[2], RamPage))
    cut = end - 4096 + into
    complete, error = _pages_before_error(real_stream[:cut], batch_pages=False)
    assert complete == [r.offset for _, _, r in single_pages[:n]]
    assert error.section == "ram"
    assert error.offset is not None and start <= error.offset <= cut
    assert f"at {error.offset:#x} in ram" in str(error)


@pytest.mark.parametrize("page_in_run", [0, 1, 5])
def test_a_cut_inside_a_page_run_keeps_every_complete_page_and_names_the_cut_one(
    real_stream: bytes, single_pages: list[PageSpan], page_in_run: int
) -> None:
    start, _, run = next(s for s in _page_spans(real_stream, True) if isinstance(s[2], RamPageRun) and s[2].count > 8)
    assert isinstance(run, RamPageRun)
    page_start = start + page_in_run * (8 + run.page_size)
    cut = page_start + 8 + 1000
    batched, error = _pages_before_error(real_stream[:cut], batch_pages=True)
    # every page complete before the cut, no more: as single page records would give them
    assert batched == [r.offset for s, e, r in single_pages if e <= cut]
    assert len(batched) == len([s for s in single_pages if s[0] < start]) + page_in_run
    assert error.section == "ram"
    assert error.offset is not None and page_start <= error.offset <= cut
    assert f"at {error.offset:#x} in ram" in str(error)


def test_the_cli_reports_a_cut_stream_in_one_line_and_converting_it_keeps_the_old_target(
    tmp_path: Path, real_stream: bytes
) -> None:
    start, end, _ = next(s for s in _page_spans(real_stream, True) if isinstance(s[2], RamPageRun) and s[2].count > 8)
    cut = tmp_path / "cut.mig"
    cut.write_bytes(real_stream[: start + 3 * (8 + 4096) + 100])
    target = tmp_path / "old.cbor"
    target.write_bytes(snapshot_bytes(1, 4, "cbor"))
    before = target.read_bytes()
    with pytest.raises(TruncatedError):
        convert(cut, target, "cbor", descriptions=DEFAULT_REGISTRY)
    for args in (("dump", cut), ("check", cut), ("convert", cut, target)):
        done = run_cli(*args)
        assert done.returncode == 2, (args, done.stderr)
        [line] = done.stderr.splitlines()
        assert " in ram" in line and "Traceback" not in done.stderr, line
    assert target.read_bytes() == before and not temporaries(tmp_path)
