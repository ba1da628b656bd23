"""Self-describing codecs over real streams: byte-exact round trips, item format, streaming RAM."""

from __future__ import annotations

import hashlib
import io
import json
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devices import DEFAULT_REGISTRY
from streams.qemu import (
    DeviceState,
    Eof,
    FileHeader,
    RamBlock,
    RamBlockList,
    RamEos,
    RamFlag,
    RamPage,
    RamZero,
    SectionHeader,
    SectionType,
    StreamReader,
    StreamRecord,
    StreamWriter,
    encode_record,
)
from streams.snapshots import (
    CODECS,
    MAGIC,
    is_snapshot,
    read_index,
    read_records,
    write_records,
)
from streams.snapshots._container import CODEC_IDS, PREAMBLE_SIZE, TAIL_SIZE
from streams.snapshots._ram_chunks import RAM_CHUNK_BYTES, RAM_CHUNK_RECORDS
from tests.support.paths import CORPUS
from tests.support.snapshots import raw_items
from tests.support.streams import stream_bytes

CODEC_NAMES = list(CODECS)


def to_snapshot(data: bytes, codec: str) -> bytes:
    out = io.BytesIO()
    write_records(StreamReader(io.BytesIO(data), descriptions=DEFAULT_REGISTRY), out, codec=codec)
    return out.getvalue()


def test_every_fixture_round_trips_in_every_codec(stream_path: Path) -> None:
    # Records come back equal to the QEMU reader's, and QEMU's bytes come back exactly.
    data = stream_bytes(stream_path)
    records = list(StreamReader(io.BytesIO(data), descriptions=DEFAULT_REGISTRY))
    for codec in CODEC_NAMES:
        snapshot = io.BytesIO()
        write_records(records, snapshot, codec=codec)
        assert snapshot.getvalue().startswith(MAGIC) and snapshot.getvalue()[10] == CODEC_IDS[codec]
        snapshot.seek(0)
        back = list(read_records(snapshot, descriptions=DEFAULT_REGISTRY))
        assert back == records, codec
        out = io.BytesIO()
        StreamWriter(out).write_all(back)
        assert out.getvalue() == data, codec


def test_each_section_names_its_description_in_plain_items() -> None:
    # q35: its ICH9 sections have no description of ours, so the vmdesc decodes them
    data = (CORPUS / "q35-7.2-virtio-net-legacy.mig").read_bytes()
    devices = [r for r in StreamReader(io.BytesIO(data), descriptions=DEFAULT_REGISTRY) if isinstance(r, DeviceState)]
    assert {d.source for d in devices} == {"typed", "vmdesc"}
    for codec in CODEC_NAMES:
        items = raw_items(to_snapshot(data, codec))
        assert items[0]["t"] == "snapshot" and items[-1]["t"] == "index"
        device_items = [i for i in items if i["t"] == "device"]
        assert [(i["idstr"], i["description"], i["description_version"], i["source"]) for i in device_items] == [
            (d.idstr, d.description.name, d.description.version, d.source) for d in devices
        ]
        for item, device in zip(device_items, devices):
            assert item["state"]["version"] == device.record.version
            assert ("vmdesc" in item) == (device.source == "vmdesc")
        index = items[-1]["devices"]
        assert [(e["idstr"], e["description_version"]) for e in index] == [(d.idstr, d.description.version) for d in devices]


def test_json_snapshot_is_ascii_json_lines() -> None:
    snapshot = to_snapshot((CORPUS / "pc-7.2-virtio-net-legacy.mig").read_bytes(), "json")
    lines = snapshot[PREAMBLE_SIZE:-TAIL_SIZE].split(b"\n")
    assert lines[-1] == b""
    for line in lines[:-1]:
        line.decode("ascii")
        assert isinstance(json.loads(line), dict)


def test_ram_items_are_bounded_chunks_of_one_block() -> None:
    data = stream_bytes(CORPUS / "pc-7.2-booted-virtio-legacy.mig.xz")
    pages = sum(isinstance(r, RamPage) for r in StreamReader(io.BytesIO(data)))
    ram = [i for i in raw_items(to_snapshot(data, "msgpack")) if i["t"] == "ram"]
    assert all(len(i["data"]) <= RAM_CHUNK_BYTES and len(i["offsets"]) <= RAM_CHUNK_RECORDS for i in ram)
    assert sum(len(i["data"]) for i in ram) == pages * 4096
    assert len(ram) >= pages * 4096 // RAM_CHUNK_BYTES
    assert len(ram) < pages / 16  # grouped, not one item per page


def test_index_is_read_alone_from_the_tail() -> None:
    data = (CORPUS / "pc-7.2-virtio-blk-modern.mig").read_bytes()
    records = list(StreamReader(io.BytesIO(data), descriptions=DEFAULT_REGISTRY))
    for codec in CODEC_NAMES:
        index = read_index(io.BytesIO(to_snapshot(data, codec)))
        assert index.content == "stream" and index.machine == "pc-i440fx-7.2"
        assert [e.idstr for e in index.devices] == [r.idstr for r in records if isinstance(r, DeviceState)]
        assert index.ram_pages == sum(isinstance(r, RamPage) for r in records)
        assert index.ram_zero_pages == sum(isinstance(r, RamZero) for r in records)


def test_is_snapshot() -> None:
    snapshot = to_snapshot((CORPUS / "pc-2.2-virtio-all.mig").read_bytes(), "cbor")
    assert is_snapshot(snapshot[:16]) and is_snapshot(snapshot[:4])
    assert not is_snapshot((CORPUS / "pc-2.2-virtio-all.mig").read_bytes()[:16])
    assert not is_snapshot(b"") and not is_snapshot(b"\x89VM")


# ------------------------------------------------------- RAM streams through


PAGES = 12_288  # 48 MiB of guest RAM


def big_stream() -> Iterator[StreamRecord]:
    """A RAM-only stream of random and uniform pages, made on the fly."""
    yield FileHeader()
    yield SectionHeader(SectionType.START, 1, "ram", 0, 4)
    yield RamBlockList(PAGES * 4096, (RamBlock("pc.ram", PAGES * 4096),))
    seed = hashlib.sha256(b"pages")
    for n in range(PAGES):
        flags = RamFlag.PAGE | (RamFlag.CONTINUE if n else 0)
        if n % 3 == 2:
            yield RamZero("pc.ram", n * 4096, RamFlag.ZERO | RamFlag.CONTINUE, n % 7)
        else:
            seed = hashlib.sha256(seed.digest())
            yield RamPage("pc.ram", n * 4096, flags, seed.digest() * 128)
    yield RamEos()
    yield Eof()


class HashSink(io.RawIOBase):
    def __init__(self) -> None:
        self.hash = hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.hash.update(data)
        return len(data)


@pytest.mark.parametrize("codec", CODEC_NAMES)
def test_ram_streams_in_and_out_in_bounded_memory(codec: str, tmp_path: Path) -> None:
    expected = hashlib.sha256()
    for record in big_stream():
        expected.update(encode_record(record))
    path = tmp_path / f"big.{codec}"
    tracemalloc.start()
    try:
        with open(path, "wb") as sink:
            write_records(big_stream(), sink, codec=codec)
        _, written_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        sink_back = HashSink()
        with open(path, "rb") as source:
            StreamWriter(sink_back).write_all(read_records(source, descriptions=DEFAULT_REGISTRY))  # type: ignore[arg-type]
        _, read_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sink_back.hash.digest() == expected.digest()
    assert path.stat().st_size > PAGES * 4096 * 2 // 3
    # 48 MiB went through; a few 1 MiB chunks at a time were held
    assert written_peak < 12 << 20, written_peak
    assert read_peak < 12 << 20, read_peak
