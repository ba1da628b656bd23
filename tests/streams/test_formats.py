"""streams.formats: one function picks the reader for a file, compressed or not.

Real QEMU 7.2 streams and snapshots of the corpus, compressed here with
gzip and xz; hand-made files that are neither.
"""

from __future__ import annotations

import gzip
import lzma
from pathlib import Path

import pytest

from devices import DEFAULT_REGISTRY
from streams.files import open_stream
from streams.formats import HEAD_SIZE, Reading, StreamFormat, formats, open_records, register_format
from streams.qemu import DeviceState, RamPageRun, StreamReader, encode_record
from tests.support.cli import run_script
from tests.support.paths import CORPUS
from tests.support.streams import stream_bytes
from vmstate.errors import MalformedError, VMStateError

STREAM = CORPUS / "pc-7.2-virtio-net-legacy.mig"
STREAM_XZ = CORPUS / "virt-7.2-bare-le-mmio.mig.xz"
SNAPSHOTS = CORPUS / "snapshots"


def _compressed(path: Path, directory: Path, how: str) -> Path:
    target = directory / f"{path.name}.{how}"
    data = path.read_bytes()
    target.write_bytes(gzip.compress(data) if how == "gz" else lzma.compress(data))
    return target


def _reference(path: Path) -> list[bytes]:
    with open_stream(path) as source:
        return [encode_record(r) for r in StreamReader(source, descriptions=DEFAULT_REGISTRY)]


@pytest.mark.parametrize("how", ["plain", "gz", "xz"])
def test_a_qemu_stream_is_read_by_the_qemu_reader_compressed_or_not(tmp_path: Path, how: str) -> None:
    path = STREAM if how == "plain" else _compressed(STREAM, tmp_path, how)
    with open_records(path, descriptions=DEFAULT_REGISTRY) as opened:
        assert (opened.kind, opened.format.name, opened.path) == ("qemu", "qemu", str(path))
        assert isinstance(opened.reader, StreamReader)
        assert opened.size == len(stream_bytes(STREAM))  # the unpacked size
        assert [encode_record(r) for r in opened.records] == _reference(STREAM)
        assert opened.position() == opened.size


def test_reader_options_reach_the_reader() -> None:
    with open_records(STREAM, descriptions=DEFAULT_REGISTRY, batch_pages=True) as opened:
        records = list(opened.records)
        assert opened.reading.page_size is not None and opened.reading.page_size() == 4096
    assert any(isinstance(r, RamPageRun) for r in records)
    assert all(r.source == "typed" for r in records if isinstance(r, DeviceState))
    with open_records(STREAM) as opened:  # no descriptions: the QEMU reader's default, the vmdesc
        assert {r.source for r in opened.records if isinstance(r, DeviceState)} == {"vmdesc"}


@pytest.mark.parametrize("how", ["plain", "gz", "xz"])
@pytest.mark.parametrize(("name", "codec"), [("pc-7.2-virtio-all-legacy.msgpack", "msgpack"),
                                             ("pc-2.2-virtio-all.cbor", "cbor"),
                                             ("virt-7.2-bare-be-mmio.snapshot.json", "json")])
def test_a_snapshot_is_read_by_the_snapshot_reader_compressed_or_not(tmp_path: Path, how: str, name: str, codec: str) -> None:
    path = SNAPSHOTS / name if how == "plain" else _compressed(SNAPSHOTS / name, tmp_path, how)
    with open_records(path, descriptions=DEFAULT_REGISTRY) as opened:
        assert (opened.kind, opened.format.name) == (codec, "snapshot")
        assert opened.reading.page_size is None
        devices = [r for r in opened.records if isinstance(r, DeviceState)]
        assert devices and opened.reader.index is not None
        position = opened.position()
        assert position is not None and 0 < position <= opened.size


def test_neither_a_stream_nor_a_snapshot_is_refused_at_offset_0(tmp_path: Path) -> None:
    text, empty = tmp_path / "text.mig", tmp_path / "empty.mig"
    text.write_bytes(b"hello, world\n" * 10)
    empty.write_bytes(b"")
    with pytest.raises(MalformedError) as info:
        open_records(text)
    assert str(info.value) == "at 0x0: not a QEMU stream or a snapshot (starts with 68656c6c)"
    assert info.value.offset == 0
    with pytest.raises(MalformedError, match="^at 0x0: empty file: not a QEMU stream or a snapshot$"):
        open_records(empty)


def _read(path: Path, **how: str) -> None:
    with open_records(path, descriptions=DEFAULT_REGISTRY, **how) as opened:  # type: ignore[arg-type]
        for _record in opened.records:
            pass


def test_fallback_and_expect_let_a_reader_say_what_is_wrong(tmp_path: Path) -> None:
    text = tmp_path / "text.mig"
    text.write_bytes(b"hello, world\n" * 10)
    with pytest.raises(MalformedError, match="not a QEMU migration stream: magic 0x68656c6c"):
        _read(text, fallback="qemu")
    # a snapshot read as what the caller expects: the QEMU reader refuses its magic
    with pytest.raises(MalformedError, match="not a QEMU migration stream: magic 0x89564d53"):
        _read(SNAPSHOTS / "pc-7.2-virtio-all-legacy.msgpack", expect="qemu")
    with pytest.raises(VMStateError):
        _read(STREAM, expect="snapshot")
    with pytest.raises(ValueError, match="no stream format 'qcow2'"):
        _read(STREAM, expect="qcow2")


def test_pair_unpacks_a_compressed_file_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    unpacked: list[object] = []
    real = lzma.LZMAFile

    def counting(*args: object, **kwargs: object) -> lzma.LZMAFile:
        unpacked.append(args[0])
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(lzma, "LZMAFile", counting)
    with open_records(STREAM_XZ, descriptions=DEFAULT_REGISTRY, pair=True) as opened:
        assert opened.original is not None
        assert b"".join(encode_record(r) for r in opened.records) == opened.original.read()
    assert len(unpacked) == 1


def _open_files() -> int:
    return len(list(Path("/proc/self/fd").iterdir()))


def test_the_file_is_closed_when_the_reader_cannot_start_and_after_with(tmp_path: Path) -> None:
    cut = tmp_path / "cut.msgpack.gz"
    cut.write_bytes(gzip.compress((SNAPSHOTS / "pc-7.2-virtio-all-legacy.msgpack").read_bytes()[:HEAD_SIZE]))
    before = _open_files()
    for _ in range(3):
        with pytest.raises(VMStateError):
            open_records(cut, pair=True)
    assert _open_files() == before
    with open_records(STREAM, pair=True) as opened:  # a plain file: two handles on it
        assert _open_files() == before + 2
    assert opened.handle.closed and opened.original is not None and opened.original.closed
    assert _open_files() == before


def test_a_registered_format_is_sniffed_after_the_built_in_ones(tmp_path: Path) -> None:
    seen: list[bytes] = []

    def read(handle, options):  # type: ignore[no-untyped-def]
        seen.append(handle.read())
        return Reading("toy", [], lambda: None)

    register_format(StreamFormat("toy-container", lambda head: head.startswith(b"TOYC"), read))
    assert [f.name for f in formats()][:2] == ["qemu", "snapshot"]
    (tmp_path / "box").write_bytes(b"TOYC" + bytes(60))
    toy = _compressed(tmp_path / "box", tmp_path, "gz")
    with open_records(toy) as opened:
        assert (opened.kind, opened.format.name, list(opened.records)) == ("toy", "toy-container", [])
    assert seen == [b"TOYC" + bytes(60)]  # the format got the unpacked bytes


def test_convert_reads_a_compressed_snapshot(tmp_path: Path) -> None:
    snapshot = _compressed(SNAPSHOTS / "pc-7.2-virtio-all-legacy.msgpack", tmp_path, "xz")
    plain, packed = tmp_path / "plain.mig", tmp_path / "packed.mig"
    assert run_script("vmstate", "convert", SNAPSHOTS / "pc-7.2-virtio-all-legacy.msgpack", plain).returncode == 0
    result = run_script("vmstate", "convert", snapshot, packed)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert packed.read_bytes() == plain.read_bytes()
