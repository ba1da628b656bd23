"""ByteReader.skip: consuming bytes without copying them, and without reading them from a seekable file."""

from __future__ import annotations

import io

import pytest

from vmstate.errors import TruncatedError
from vmstate.wire import ByteReader


class _CountingFile(io.BytesIO):
    """A seekable file that remembers how many bytes were read from it."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.bytes_read = 0

    def read(self, n: int | None = -1) -> bytes:
        data = super().read(n)
        self.bytes_read += len(data)
        return data


def test_a_long_skip_seeks_over_the_bytes_instead_of_reading_them() -> None:
    data = bytes(range(256)) * (1 << 14)  # 4 MiB
    source = _CountingFile(data)
    reader = ByteReader(source)
    assert reader.read(4) == data[:4]
    reader.skip(3 << 20)
    assert reader.offset == 4 + (3 << 20)
    assert reader.read(8) == data[4 + (3 << 20) : 12 + (3 << 20)]
    assert source.bytes_read < 1 << 18  # two chunks of 64 KiB, not the 3 MiB skipped
    assert reader.peek_at(16, 4) == data[28 + (3 << 20) : 32 + (3 << 20)]  # the buffer and file agree again


def test_a_skip_past_the_end_is_a_truncation_at_the_skip_and_leaves_the_reader_where_it_was() -> None:
    reader = ByteReader(_CountingFile(b"\1" * 100_000))
    reader.read(10)
    with pytest.raises(TruncatedError) as caught:
        reader.skip(200_000)
    assert caught.value.offset == 10
    assert "expected 200000 bytes, got 99990" in str(caught.value)
    assert reader.offset == 10 and reader.read(2) == b"\1\1"


def test_a_pinned_position_keeps_its_bytes_through_a_skip() -> None:
    data = bytes(range(256)) * 4096
    reader = ByteReader(io.BytesIO(data))
    mark = reader.mark()
    reader.skip(700_000)
    assert reader.read(3) == data[700_000:700_003]
    reader.rewind(mark)
    assert reader.read(5) == data[:5]
