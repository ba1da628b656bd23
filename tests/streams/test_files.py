"""open_stream: compressed streams read like plain ones."""

from __future__ import annotations

import gzip
import lzma
from pathlib import Path

import pytest

from streams.files import open_stream
from streams.qemu import StreamReader
from vmstate.errors import MalformedError


@pytest.mark.parametrize("compress", [lzma.compress, gzip.compress, lambda data: data], ids=["xz", "gzip", "plain"])
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
