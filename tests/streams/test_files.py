"""open_stream: compressed streams read like plain ones."""

from __future__ import annotations

import bz2
import gzip
import lzma
from pathlib import Path

import pytest

from streams.files import open_stream
from streams.qemu import StreamReader
from vmstate.errors import MalformedError


def _zstd(data: bytes) -> bytes:
    import zstandard

    return zstandard.ZstdCompressor(level=3, write_checksum=True).compress(data)


def _zstd_two_frames(data: bytes) -> bytes:
    return _zstd(data[: len(data) // 2]) + _zstd(data[len(data) // 2 :])


@pytest.mark.parametrize("compress", [lzma.compress, gzip.compress, bz2.compress, _zstd, _zstd_two_frames,
                                      lambda data: data],
                         ids=["xz", "gzip", "bzip2", "zstd", "zstd-two-frames", "plain"])
def test_compressed_streams_decode_like_plain_ones(corpus_file, tmp_path: Path, compress) -> None:  # type: ignore[no-untyped-def]
    plain = corpus_file("pc-7.2-virtio-rng-legacy.mig").read_bytes()
    path = tmp_path / "stream.mig.z"
    path.write_bytes(compress(plain))
    with open_stream(path) as source:
        assert source.read() == plain
    with open_stream(path) as source:
        assert any((getattr(r, "idstr", None) or "").endswith("virtio-rng") for r in StreamReader(source))


def test_a_cut_compressed_file_is_malformed(corpus_file, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "cut.mig.xz"
    path.write_bytes(lzma.compress(corpus_file("pc-7.2-virtio-rng-legacy.mig").read_bytes())[:200])
    with pytest.raises(MalformedError, match="cannot decompress"):
        open_stream(path)


@pytest.mark.parametrize("cut", [200, 5, -1, -5])
def test_a_cut_zstd_file_is_malformed_not_a_short_stream(corpus_file, tmp_path: Path, cut: int) -> None:  # type: ignore[no-untyped-def]
    """zstandard's reader ends quietly on a cut frame: the frame walk says where the file is cut."""
    path = tmp_path / "cut.mig.zst"
    path.write_bytes(_zstd(corpus_file("pc-7.2-virtio-rng-legacy.mig").read_bytes())[:cut])
    with pytest.raises(MalformedError, match=r"cannot decompress \(zstd\)"):
        open_stream(path)


@pytest.mark.parametrize(("head", "named"), [
    (b"\x04\x22\x4d\x18rest", "an lz4 file"), (b"\x89LZO\x00\r\n\x1a\nrest", "an lzop file"),
    (b"PK\x03\x04rest", "a zip archive"),
])
def test_known_containers_are_named_in_the_error(tmp_path: Path, head: bytes, named: str) -> None:
    path = tmp_path / "not-a-stream"
    path.write_bytes(head)
    with open_stream(path) as source, pytest.raises(MalformedError, match=f"not a QEMU migration stream: .*: {named}"):
        list(StreamReader(source))


def test_a_damaged_bzip2_file_is_malformed(tmp_path: Path) -> None:
    path = tmp_path / "bad.mig.bz2"
    path.write_bytes(b"BZh91AY&SY" + bytes(64))
    with pytest.raises(MalformedError, match=r"cannot decompress \(bzip2\)"):
        open_stream(path)
