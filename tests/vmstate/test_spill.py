"""Long byte strings on disk: kept whole, read back in chunks, compared without joining them."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from vmstate.spill import Blob, Spill, chunks, first_difference


def _naive(a: bytes, b: bytes) -> int | None:
    if a == b:
        return None
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.binary(max_size=300), st.integers(1, 64), st.integers(0, 80))
def test_first_difference_of_spilled_and_plain_bytes_is_the_bytewise_one(a: bytes, b: bytes, size: int, keep: int) -> None:
    b = a[:keep] + b  # share a prefix often
    with Spill(threshold=size) as spill:
        kept_a, kept_b = spill.keep(a), spill.keep(b)
        assert isinstance(kept_a, Blob) == (len(a) > size)
        assert b"".join(chunks(kept_a, 7)) == a and len(kept_a) == len(a)
        assert b"".join(chunks(kept_b, size)) == b
        expected = _naive(a, b)
        for x, y in ((kept_a, kept_b), (a, kept_b), (kept_a, b), (a, b)):
            assert first_difference(x, y) == expected


def test_a_blob_is_read_a_chunk_at_a_time() -> None:
    data = bytes(range(256)) * 40_000  # 10 MB
    with Spill() as spill:
        small, blob = spill.keep(b"short"), spill.keep(memoryview(data))
        assert small == b"short" and isinstance(blob, Blob)
        parts = list(blob.chunks())
        assert max(map(len, parts)) == 1 << 20 and b"".join(parts) == data
        assert blob.head(5) == data[:5] and repr(blob) == f"<Blob of {len(data)} bytes>"
        changed = bytearray(data)
        changed[7_654_321] ^= 1
        assert first_difference(blob, spill.keep(changed)) == 7_654_321
