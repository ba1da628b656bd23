"""check_stream reads a stream's RAM page runs once: the second handle seeks over them and stays in step."""

from __future__ import annotations

import io
from pathlib import Path
from typing import BinaryIO

from devices import DEFAULT_REGISTRY
from streams.files import open_stream
from streams.qemu import StreamReader, check_stream
from streams.records import DeviceState, RamPageRun
from tests.support.paths import CORPUS

STREAM = CORPUS / "pc-7.2-virtio-net-modern.mig"


class _Counted(io.RawIOBase):
    """A file read through ``read`` and ``seek`` only, counting the bytes ``read`` returned."""

    def __init__(self, inner: BinaryIO) -> None:
        super().__init__()
        self.inner, self.read_bytes = inner, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self.inner.seek(offset, whence)

    def tell(self) -> int:
        return self.inner.tell()

    def read(self, size: int = -1) -> bytes:
        data = self.inner.read(size)
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
    with open_stream(STREAM) as source, open(STREAM, "rb") as plain:
        original = _Counted(plain)
        report = check_stream(source, original, descriptions=DEFAULT_REGISTRY)  # type: ignore[arg-type]
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
