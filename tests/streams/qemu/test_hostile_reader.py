"""Reader-side hostile inputs (issue 12, section 3): typed errors with offsets, bounded memory, linear work.

Memory is measured as the peak RSS of a real ``vmstate`` subprocess (as in
tests/streams/qemu/test_memory.py); work as bytes read and candidates looked at, never
as time.
"""

from __future__ import annotations

import gzip
import io
import json
import lzma
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices import DEFAULT_REGISTRY
from streams.qemu import RamPageRun, RawBody, StreamReader, TrailingData
from streams.qemu.scan import ScanContext, _candidates, _plausible_start
from streams.qemu.trailer import locate_trailer
from tests.fuzz.hostile import big_page_stream, deep_json, vmdesc_of, wide_json, with_surrogate, with_vmdesc
from tests.fuzz.mutate import qemu_seed
from tests.support.cli import run_script
from tests.support.paths import CORPUS
from vmstate import LimitExceededError, MalformedError
from vmstate.limits import DEFAULT_LIMITS, Limits

SEVEN = "pc-7.2-virtio-rng-legacy.mig"


def seven() -> tuple[bytes, int]:
    seed = qemu_seed(SEVEN)
    return seed.payload, seed.eof


def read_all(data: bytes | io.RawIOBase, **kwargs: Any) -> list[object]:
    source = io.BytesIO(data) if isinstance(data, bytes) else data
    return list(StreamReader(source, descriptions=DEFAULT_REGISTRY, **kwargs))  # type: ignore[arg-type]


def peak_rss_kib(*args: str | Path) -> tuple[int, int, str]:
    """Exit status, peak RSS (KiB) and stderr of ``vmstate ARGS`` run in a fresh parent."""
    vmstate = shutil.which("vmstate")
    assert vmstate, "the vmstate script is not installed"
    probe = (
        "import resource, subprocess, sys\n"
        "r = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "sys.stderr.write(r.stderr)\n"
        "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe, vmstate, *map(str, args)], capture_output=True, text=True)
    returncode, peak = (int(x) for x in result.stdout.split())
    return returncode, peak, result.stderr


class Counting(io.RawIOBase):
    """A seekable file over bytes that counts what is read from it."""

    def __init__(self, data: bytes) -> None:
        super().__init__()
        self._inner = io.BytesIO(data)
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._inner.seek(offset, whence)

    def tell(self) -> int:
        return self._inner.tell()

    def readinto(self, buffer: Any) -> int:
        data = self._inner.read(len(buffer))
        buffer[: len(data)] = data
        self.bytes_read += len(data)
        return len(data)


# ---------------------------------------------------------------- 1. nesting depth


@pytest.mark.parametrize("depth", [DEFAULT_LIMITS.max_vmdesc_depth, 1000, 100_000])
def test_a_deeply_nested_vmdesc_is_refused_before_parsing(depth: int) -> None:
    data, eof = seven()
    with pytest.raises(LimitExceededError, match="max_vmdesc_depth") as info:
        read_all(with_vmdesc(data, eof, deep_json(depth)))
    assert info.value.offset == eof + 6 and info.value.section == "vmdesc"


def test_nesting_up_to_the_limit_parses() -> None:
    data, eof = seven()
    # devices: [ [ ... ] ] inside the top object: 2 levels of our own
    nested = deep_json(DEFAULT_LIMITS.max_vmdesc_depth - 2)
    with pytest.raises(MalformedError, match=r"devices\[0\] is not an object"):
        read_all(with_vmdesc(data, eof, nested))


@pytest.mark.parametrize(
    "command",
    [["check"], ["dump"], ["dump", "--json"], ["describe", "--stream"], ["convert"], ["extract"], ["diff"]],
    ids=lambda c: "-".join(c),
)
def test_every_command_reports_a_deep_vmdesc_in_one_line(tmp_path: Path, command: list[str]) -> None:
    data, eof = seven()
    stream = tmp_path / "deep.mig"
    stream.write_bytes(with_vmdesc(data, eof, deep_json(100_000)))
    extra: list[str | Path] = {"convert": [tmp_path / "out.msgpack"], "extract": [tmp_path / "out"],
                               "diff": [CORPUS / SEVEN]}.get(command[0], [])
    if command[0] == "describe":
        result = run_script("vmstate", *command, stream)
    else:
        result = run_script("vmstate", *command, stream, *extra)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "max_vmdesc_depth" in lines[0] and f"at {eof + 6:#x}" in lines[0], lines


# ---------------------------------------------------------------- 2. entry types


@pytest.mark.parametrize("value", [[], {}, "0", True, -1, 1 << 32, None, 1.5])
def test_a_vmdesc_instance_id_that_is_not_a_u32_is_malformed(value: object) -> None:
    data, eof = seven()
    desc = vmdesc_of(data, eof)
    desc["devices"][3]["instance_id"] = value
    with pytest.raises(MalformedError, match=r"devices\[3\]\.instance_id") as info:
        read_all(with_vmdesc(data, eof, json.dumps(desc).encode()))
    assert info.value.offset == eof + 6


@pytest.mark.parametrize("change", ["entry", "name", "devices"])
def test_vmdesc_entries_of_the_wrong_shape_are_malformed_with_an_offset(change: str) -> None:
    data, eof = seven()
    desc = vmdesc_of(data, eof)
    if change == "entry":
        desc["devices"][0] = [desc["devices"][0]]
    elif change == "name":
        desc["devices"][0]["name"] = 7
    else:
        desc["devices"] = {"0": desc["devices"]}
    with pytest.raises(MalformedError) as info:
        read_all(with_vmdesc(data, eof, json.dumps(desc).encode()))
    assert info.value.offset == eof + 6


# ---------------------------------------------------------------- 3. lone surrogates


@pytest.mark.parametrize("key", ["name", "vmsd_name", "type"])
def test_a_lone_surrogate_in_a_vmdesc_name_is_malformed(key: str) -> None:
    data, eof = seven()
    text = with_surrogate(json.dumps(vmdesc_of(data, eof)), key)
    with pytest.raises(MalformedError, match="lone surrogate") as info:
        read_all(with_vmdesc(data, eof, text.encode()))
    assert info.value.offset is not None
    str(info.value).encode("ascii")  # the message itself is printable


def test_a_lone_surrogate_in_a_field_name_is_malformed(tmp_path: Path) -> None:
    data, eof = seven()
    desc = vmdesc_of(data, eof)
    # a section only the vmdesc describes, so its field names are used
    cpu = next(d for d in desc["devices"] if d["name"] == "cpu")
    text = json.dumps(desc).replace(json.dumps(cpu["fields"][0]["name"]), '"\\udc80x"', 1)
    stream = tmp_path / "surrogate.mig"
    stream.write_bytes(with_vmdesc(data, eof, text.encode()))
    with pytest.raises(MalformedError, match="lone surrogate"):
        read_all(stream.read_bytes())
    result = run_script("vmstate", "dump", stream)
    assert result.returncode == 2 and "Traceback" not in result.stderr and "lone surrogate" in result.stderr


# ---------------------------------------------------------------- 5. parsed size


def test_a_vmdesc_of_too_many_values_is_refused_before_parsing() -> None:
    data, eof = seven()
    raw = wide_json(DEFAULT_LIMITS.max_vmdesc_items)
    with pytest.raises(LimitExceededError, match="max_vmdesc_items") as info:
        read_all(with_vmdesc(data, eof, raw))
    assert info.value.offset == eof + 6
    with pytest.raises(LimitExceededError, match="max_vmdesc_items"):
        read_all(with_vmdesc(data, eof, wide_json(1000)), limits=Limits(max_vmdesc_items=999))


def test_real_vmdescs_are_far_inside_the_limits() -> None:
    for path in sorted(CORPUS.glob("*-7.2-*.mig")):
        reader = StreamReader(open(path, "rb"))
        assert reader.vmdesc is not None
        raw = path.read_bytes()[reader._trailer.eof_offset + 6 :]  # type: ignore[union-attr]
        assert len(raw) * 50 < DEFAULT_LIMITS.max_vmdesc
        assert (1 + raw.count(b",") + raw.count(b"[") + raw.count(b"{")) * 50 < DEFAULT_LIMITS.max_vmdesc_items


@pytest.mark.slow
def test_the_costliest_vmdesc_the_limits_accept_stays_under_200mb(tmp_path: Path) -> None:
    data, eof = seven()
    # distinct keys: the most memory per counted value (a new string and a dict slot each)
    count = DEFAULT_LIMITS.max_vmdesc_items - 10
    raw = b'{"page_size": 4096, "devices": [], "x": {' + b",".join(b'"%d":0' % i for i in range(count)) + b"}}"
    assert len(raw) <= DEFAULT_LIMITS.max_vmdesc
    stream = tmp_path / "wide.mig"
    stream.write_bytes(with_vmdesc(data, eof, raw))
    returncode, peak, stderr = peak_rss_kib("check", stream)
    assert returncode == 0, stderr
    assert peak < 200 * 1024, f"peak RSS {peak} KiB"


def test_a_vmdesc_over_the_limits_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    data, eof = seven()
    stream = tmp_path / "wide.mig"
    stream.write_bytes(with_vmdesc(data, eof, wide_json(5_000_000)))  # 15 MB, 10 M values
    returncode, peak, stderr = peak_rss_kib("check", stream)
    assert returncode == 2 and "max_vmdesc_items" in stderr
    assert peak < 120 * 1024, f"peak RSS {peak} KiB"


# ---------------------------------------------------------------- 6, 9. after the EOF byte


def _nul_free(size: int) -> bytes:
    return os.urandom(size).replace(b"\x00", b"\x01")


def test_trailing_data_is_yielded_in_chunks_and_written_back() -> None:
    data, eof = seven()
    tail = _nul_free(3 << 20 | 5)
    records = read_all(data + tail)
    chunks = [r.data for r in records if isinstance(r, TrailingData)]
    assert len(chunks) == 4 and max(map(len, chunks)) == 1 << 20 and b"".join(chunks) == tail


@pytest.mark.slow
def test_check_with_200mb_of_trailing_data_stays_under_100mb(tmp_path: Path) -> None:
    data, _ = seven()
    stream = tmp_path / "trailing.mig"
    with open(stream, "wb") as sink:
        sink.write(data)
        block = _nul_free(1 << 20)
        for _ in range(200):
            sink.write(block)  # NUL-free: the trailer search finds no EOF byte in its reach either
    returncode, peak, stderr = peak_rss_kib("check", stream)
    assert returncode == 0, stderr
    assert peak < 100 * 1024, f"peak RSS {peak} KiB"


@pytest.mark.parametrize("max_vmdesc", [1 << 20, DEFAULT_LIMITS.max_vmdesc])
def test_the_trailer_search_reads_no_further_back_than_a_vmdesc_can_reach(max_vmdesc: int) -> None:
    data, _ = seven()
    file = Counting(data + _nul_free(max_vmdesc + (8 << 20)))
    assert locate_trailer(file, Limits(max_vmdesc=max_vmdesc)) is None  # type: ignore[arg-type]
    assert file.bytes_read <= max_vmdesc + (1 << 20) + 16


# ---------------------------------------------------------------- 7. bodies nothing describes


def _grown(name: str, idstr: str, insert: bytes) -> tuple[bytes, int, int]:
    """A reduced stream without vmdesc whose raw ``idstr`` body has ``insert`` appended.

    Also the new body's length and where the body ends in the stream.
    """
    from streams.qemu import SectionHeader, StreamWriter

    seed = qemu_seed(name)
    out = io.BytesIO()
    writer, current, length, end = StreamWriter(out), None, -1, -1
    for record in StreamReader(io.BytesIO(seed.payload[: seed.eof + 1])):
        if isinstance(record, SectionHeader) and record.idstr is not None:
            current = record.idstr
        if isinstance(record, RawBody) and current == idstr and length < 0:
            record = RawBody(record.data + insert, record.reason)
            length = len(record.data)
            end = writer.offset + length
        writer.write(record)
    assert length > 0
    return out.getvalue(), length, end


@pytest.mark.slow
def test_a_200mb_body_nothing_describes_is_held_once(tmp_path: Path) -> None:
    block = _nul_free(1 << 20).replace(b"\x7e", b"\x7f")  # no footer look-alike
    data, _, end = _grown(SEVEN, "cpu", b"")
    stream = tmp_path / "raw.mig"
    with open(stream, "wb") as sink:
        sink.write(data[:end])
        for _ in range(200):
            sink.write(block)
        sink.write(data[end:])
    # our cpu description gives way at the grown end: the body is kept raw and reported NOT NAMED
    returncode, peak, stderr = peak_rss_kib("check", "--allow-unnamed", stream)
    assert returncode == 0, stderr
    # the body (200 MiB) once, and the interpreter's own ~35 MB
    assert peak < (200 + 75) * 1024, f"peak RSS {peak} KiB"


def test_a_long_raw_body_is_read_with_one_copy() -> None:
    data, length, _ = _grown(SEVEN, "cpu", bytes(8 << 20))
    file = Counting(data)
    records = read_all(file)  # type: ignore[arg-type]
    assert max(len(r.data) for r in records if isinstance(r, RawBody)) == length
    # scanned once (a window at a time) and read once
    assert file.bytes_read < 2 * len(data) + (8 << 20)


# ---------------------------------------------------------------- 8. large pages


def test_runs_of_large_pages_look_ahead_one_page_at_a_time() -> None:
    data = big_page_stream(1 << 20, 6)
    runs = [r for r in read_all(data, batch_pages=True) if isinstance(r, RamPageRun)]
    assert [r.count for r in runs] == [1] * 5


@pytest.mark.slow
def test_check_of_1mib_pages_stays_bounded(tmp_path: Path) -> None:
    stream = tmp_path / "pages.mig"
    stream.write_bytes(big_page_stream(1 << 20, 96))
    returncode, peak, stderr = peak_rss_kib("check", stream)
    assert returncode == 0, stderr
    assert peak < 80 * 1024, f"peak RSS {peak} KiB"


# ---------------------------------------------------------------- 10. the footer-less scan


def _context(eof: int | None = None) -> ScanContext:
    return ScanContext(used_ids={0, 1, 2}, started_ids={0}, footers=False, eof_offset=eof)


def test_the_scan_skips_zeros_and_random_bytes_without_looking_at_them() -> None:
    assert _candidates(bytes(4 << 20), 4 << 20, None, 0, False, _context(1 << 30)) == []
    noise = os.urandom(4 << 20)
    assert len(_candidates(noise, 4 << 20, None, 0, False, _context())) < len(noise) // 100


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=1, max_size=600), st.booleans(), st.sampled_from([None, 0, 7, 300]))
def test_scan_candidates_include_every_plausible_boundary(buf: bytes, at_end: bool, eof: int | None) -> None:
    ctx = _context(eof)
    stop = len(buf)
    found = set(_candidates(buf, stop, None, 0, at_end, ctx))
    for p in range(stop):
        if _plausible_start(buf, p, 0, at_end, ctx):
            assert p in found, p


def test_a_30mb_footerless_body_is_scanned_once() -> None:
    data, length, _ = _grown("pc-2.2-virtio-all.mig", "cpu", bytes(30 << 20))
    file = Counting(data)
    records = read_all(file)  # type: ignore[arg-type]
    assert max(len(r.data) for r in records if isinstance(r, RawBody)) == length
    assert file.bytes_read < 2 * len(data) + (8 << 20)
    out = io.BytesIO()
    from streams.qemu import StreamWriter

    StreamWriter(out).write_all(records)  # type: ignore[arg-type]
    assert out.getvalue() == data


# ---------------------------------------------------------------- 15. smaller


def test_the_devices_error_names_an_offset() -> None:
    data, eof = seven()
    with pytest.raises(MalformedError, match="'devices' is not a list") as info:
        read_all(with_vmdesc(data, eof, b'{"devices": 1}'))
    assert info.value.offset == eof + 6


def _limited_fsize() -> None:
    import resource
    import signal

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an ignored signal stays ignored across exec
    resource.setrlimit(resource.RLIMIT_FSIZE, (20 << 20, 20 << 20))


def test_a_full_temporary_directory_is_an_os_error_not_damage(tmp_path: Path) -> None:
    data, _, _ = _grown("pc-2.2-virtio-all.mig", "cpu", bytes(40 << 20))  # spills to disk past 16 MiB
    stream = tmp_path / "big.mig.xz"
    stream.write_bytes(lzma.compress(data))
    vmstate = shutil.which("vmstate")
    assert vmstate
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    result = subprocess.run([vmstate, "check", str(stream)], capture_output=True, text=True, env=env,
                            preexec_fn=_limited_fsize, check=False)
    assert result.returncode == 2
    line = result.stderr.strip()
    assert "cannot decompress" not in line and "File too large" in line and str(tmp_path) in line, line


def test_vmstate_check_decompresses_a_gzip_stream_once(tmp_path: Path) -> None:
    stream = tmp_path / "s.mig.gz"
    plain = (CORPUS / SEVEN).read_bytes()
    stream.write_bytes(gzip.compress(plain))
    probe = (
        "import atexit, gzip, sys\n"
        "from vmstate.cli import main\n"
        "total = [0]\n"
        "read = gzip.GzipFile.read\n"
        "def counted(self, *args):\n"
        "    data = read(self, *args)\n"
        "    total[0] += len(data)\n"
        "    return data\n"
        "gzip.GzipFile.read = counted\n"
        "atexit.register(lambda: print('unpacked', total[0], file=sys.stderr))\n"
        "sys.argv = ['vmstate', 'check', sys.argv[1]]\n"
        "main()\n"
    )
    result = subprocess.run([sys.executable, "-c", probe, str(stream)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert f"unpacked {len(plain)}" in result.stderr


def test_open_stream_pair_gives_two_independent_handles(tmp_path: Path) -> None:
    from streams.files import open_stream_pair

    plain = (CORPUS / SEVEN).read_bytes()
    for name, data in (("s.mig", plain), ("s.mig.xz", lzma.compress(plain))):
        path = tmp_path / name
        path.write_bytes(data)
        with open_stream_pair(path) as (a, b):
            assert a.read(10) == plain[:10]
            assert b.read(20) == plain[:20]
            assert a.read(10) == plain[10:20]
            assert b.read() == plain[20:]
