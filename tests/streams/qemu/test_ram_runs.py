"""Batched RAM pages (``RamPageRun``) are the same pages as one record each, and encode the same."""

from __future__ import annotations

import io

import pytest

from streams.qemu import RamBlock, RamEos, RamPage, RamPageRun, RamZero, StreamReader, StreamWriter
from streams.qemu.ram import MAX_RUN, RamCodec
from tests.support.paths import CORPUS
from tests.support.streams import stream_bytes
from vmstate.errors import MalformedError
from vmstate.limits import DEFAULT_LIMITS
from vmstate.wire import ByteReader


def _records(data: bytes, batch: bool) -> list:
    return list(StreamReader(io.BytesIO(data), batch_pages=batch))


@pytest.mark.parametrize(
    "name", ["pc-7.2-virtio-net-legacy.mig", "pseries-7.2-virtio-all-legacy.mig", "virt-7.2-virtio-mmio-all.mig",
             "pc-2.2-virtio-all.mig", "pc-7.2-booted-virtio-legacy.mig.xz"]
)
def test_runs_expand_to_the_unbatched_records_and_encode_identically(name: str) -> None:
    data = stream_bytes(CORPUS / name)
    single = _records(data, batch=False)
    batched = _records(data, batch=True)
    runs = [r for r in batched if isinstance(r, RamPageRun)]
    expanded = [p for r in batched for p in (r.expand() if isinstance(r, RamPageRun) else [r])]
    assert expanded == single
    out = io.BytesIO()
    StreamWriter(out).write_all(batched)
    assert out.getvalue() == data
    if "booted" in name:  # a booted guest's RAM is full pages in long runs
        assert runs and max(r.count for r in runs) == MAX_RUN
        assert sum(r.count for r in runs) > 0.9 * sum(isinstance(r, RamPage) for r in single)


PAGE = 4096


def _page(offset: int, fill: int, name: bytes | None = None) -> bytes:
    flags = 0x08 if name is not None else 0x28
    head = (offset | flags).to_bytes(8, "big")
    return head + (bytes((len(name),)) + name if name is not None else b"") + bytes((fill,)) * PAGE


def _codec(length: int) -> RamCodec:
    codec = RamCodec(PAGE, limits=DEFAULT_LIMITS, batch_pages=True)
    codec.blocks["b"] = RamBlock("b", length)
    return codec


def test_a_run_stops_at_a_gap_and_resumes_after_it() -> None:
    wire = _page(0, 1, b"b") + _page(PAGE, 2) + _page(2 * PAGE, 3) + _page(5 * PAGE, 4) + _page(6 * PAGE, 5)
    records = list(_codec(8 * PAGE).decode_body(ByteReader(wire + (0x10).to_bytes(8, "big"))))
    shapes = [(type(r).__name__, getattr(r, "offset", None), getattr(r, "count", 1)) for r in records]
    assert shapes == [("RamPage", 0, 1), ("RamPageRun", PAGE, 2), ("RamPage", 5 * PAGE, 1),
                      ("RamPageRun", 6 * PAGE, 1), ("RamEos", None, 1)]
    assert [bytes(d)[:1] for _, d in records[1].pages()] == [b"\x02", b"\x03"]


def test_a_run_never_takes_a_page_past_its_block() -> None:
    wire = _page(0, 1, b"b") + _page(PAGE, 2) + _page(2 * PAGE, 3)
    codec = _codec(2 * PAGE)
    records = codec.decode_body(ByteReader(wire))
    assert isinstance(next(records), RamPage)
    run = next(records)
    assert isinstance(run, RamPageRun) and run.count == 1
    with pytest.raises(MalformedError, match="outside RAM block"):
        next(records)


def test_pages_that_do_not_follow_on_never_read_a_run_ahead(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every other page: no run forms, and no 1 MiB look-ahead is made per page (found by the fuzzer)."""
    wire = _page(0, 1, b"b") + b"".join(_page(2 * i * PAGE, 2) for i in range(1, 50)) + (0x10).to_bytes(8, "big")
    sizes: list[int] = []
    original = ByteReader.peek
    monkeypatch.setattr(ByteReader, "peek", lambda self, n: sizes.append(n) or original(self, n))
    records = list(_codec(128 * PAGE).decode_body(ByteReader(wire)))
    assert [type(r).__name__ for r in records] == ["RamPage"] * 50 + ["RamEos"]
    assert max(sizes) == 8


@pytest.mark.parametrize("name", ["pc-7.2-virtio-net-legacy.mig", "pseries-7.2-virtio-all-legacy.mig", "virt-7.2-virtio-mmio-all.mig"])
def test_a_mapped_file_gives_the_records_of_its_bytes(name: str) -> None:
    """A regular file is mapped: its runs are views of the mapping, equal to the runs read through the byte reader."""
    path = CORPUS / name
    with open(path, "rb") as source:
        mapped = list(StreamReader(source, batch_pages=True))
    assert mapped == _records(path.read_bytes(), batch=True)
    runs = [r for r in mapped if isinstance(r, RamPageRun)]
    assert runs and all(isinstance(r.raw, memoryview) and r.raw.readonly for r in runs)
    out = io.BytesIO()
    StreamWriter(out).write_all(mapped)
    assert out.getvalue() == path.read_bytes()


def _rss_file_kib() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("RssFile:"))


def test_mapped_pages_leave_the_resident_set_once_read(tmp_path) -> None:
    """64 MiB of page runs read from a file: the mapping's resident part stays a few MiB, not the file."""
    path = tmp_path / "runs.mig"
    block = None
    with open(path, "wb") as sink:
        writer = StreamWriter(sink)
        for record in StreamReader(open(CORPUS / "pc-7.2-virtio-net-legacy.mig", "rb")):
            if isinstance(record, (RamPage, RamZero)) and block is None:
                block = record.block  # pc.ram, 16 MiB
            if isinstance(record, RamEos) and block:
                for _ in range(4):  # four passes over the first 16 MiB, each page sent again, as live migration does
                    writer.write(RamPage(block, 0, 0x08, bytes(PAGE)))
                    for i in range(1, 4096):
                        writer.write(RamPage(block, i * PAGE, 0x28, i.to_bytes(4, "big") * (PAGE // 4)))
                block = ""
            writer.write(record)
    assert block == "" and path.stat().st_size > 64 << 20
    before = _rss_file_kib()
    peak = 0
    with open(path, "rb") as source:
        for record in StreamReader(source, batch_pages=True):
            if isinstance(record, RamPageRun):
                bytes(record.raw)  # touch every page, as a consumer hashing them would
                peak = max(peak, _rss_file_kib() - before)
    assert 0 < peak < 24 << 10, f"{peak} KiB of the mapping resident"
