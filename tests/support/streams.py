"""The stream files the tests run over: the corpus, the examples and $VMSTATE_STREAM_DIRS."""

from __future__ import annotations

import os
from pathlib import Path

from streams.files import open_stream

from .paths import CORPUS, EXAMPLES

__all__ = ["WITHOUT_VIRTIO", "stream_bytes", "stream_files", "unnamed_virtio_net"]


def stream_files() -> list[Path]:
    """Every ``*.mig`` (or ``*.mig.xz``/``.gz``) in the corpus, the examples and $VMSTATE_STREAM_DIRS."""
    dirs = [CORPUS, EXAMPLES] + [Path(d) for d in os.environ.get("VMSTATE_STREAM_DIRS", "").split(os.pathsep) if d]
    return sorted(p for d in dirs for pattern in ("*.mig", "*.mig.xz", "*.mig.gz") for p in d.glob(pattern))


def stream_bytes(path: Path) -> bytes:
    """The uncompressed bytes of a stream file."""
    with open_stream(path) as source:
        return source.read()


#: corpus streams made for their machine sections, with no virtio device on purpose
WITHOUT_VIRTIO = {"pc-2.2-memory-slots.mig": "piix4_pm with memory slots (compat_fixtures/generate.py)"}


def unnamed_virtio_net(tmp_path: Path) -> Path:
    """A real stream whose virtio-net our description refuses (5000 queues) but the vmdesc sizes."""
    data = bytearray((CORPUS / "pc-7.2-virtio-net-legacy.mig").read_bytes())
    header = b"0000:00:02.0/virtio-net" + bytes(4) + (11).to_bytes(4, "big")
    at = data.index(header) + len(header) + 363
    data[at : at + 4] = (5000).to_bytes(4, "big")
    path = tmp_path / "unnamed-virtio-net.mig"
    path.write_bytes(bytes(data))
    return path
