"""check_stream reads a stream's RAM page runs once: the second handle seeks over them and stays in step."""

from __future__ import annotations

import io
from pathlib import Path

from devices import DEFAULT_REGISTRY
from streams.files import open_stream
from streams.qemu import StreamReader, check_stream
from streams.records import DeviceState, RamPageRun
from tests.support.paths import CORPUS

STREAM = CORPUS / "pc-7.2-virtio-net-modern.mig"


class _Counted(io.FileIO):
    """A file whose ``read`` counts the bytes it returned."""

    read_bytes = 0

    def read(self, size: int = -1) -> bytes:
        data = super().read(size)
        self.read_bytes += len(data)
        return data


def _runs_and_a_later_section(path: Path) -> tuple[int, int]:
    """Bytes in RAM page runs, and the offset of a device body that comes after the first run."""
    in_runs, after, seen_run = 0, -1, False
    with open_stream(path) as source:
        reader = StreamReader(source, descriptions=DEFAULT_REGISTRY, batch_pages=True)
        start = 0
        for record in reader:
            if isinstance(record, RamPageRun):
                in_runs += len(record.raw)
                seen_run = True
            elif isinstance(record, DeviceState) and seen_run and after < 0 and reader.offset - start > 16:
                after = start + 8  # a byte inside the body
            start = reader.offset
    return in_runs, after


def test_the_second_handle_reads_everything_but_the_page_runs() -> None:
    in_runs, _ = _runs_and_a_later_section(STREAM)
    size = STREAM.stat().st_size
    assert in_runs > size // 4  # the stream's pages are most of it
    with open_stream(STREAM) as source, _Counted(STREAM) as original:
        report = check_stream(source, original, descriptions=DEFAULT_REGISTRY)
    assert report.identical and report.size == size
    assert original.read_bytes == size - in_runs  # every other byte read and compared


def test_a_difference_after_the_page_runs_is_found_at_its_offset(tmp_path: Path) -> None:
    _, at = _runs_and_a_later_section(STREAM)
    assert at > 0
    changed = bytearray(STREAM.read_bytes())
    changed[at] ^= 0xFF
    other = tmp_path / "changed.mig"
    other.write_bytes(changed)
    with open_stream(STREAM) as source, open(other, "rb") as original:
        report = check_stream(source, original, descriptions=DEFAULT_REGISTRY)
    assert not report.identical and report.first_difference == at


def test_a_second_handle_that_ends_inside_the_page_runs_is_a_difference(tmp_path: Path) -> None:
    data = STREAM.read_bytes()
    cut = tmp_path / "cut.mig"
    cut.write_bytes(data[: len(data) // 2])
    with open_stream(STREAM) as source, open(cut, "rb") as original:
        report = check_stream(source, original, descriptions=DEFAULT_REGISTRY)
    assert not report.identical and report.first_difference == len(data) // 2
