"""Damaged and hostile snapshot files give only our typed errors, with offsets, and allocate little."""

from __future__ import annotations

import io
import tracemalloc
from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from devices import DEFAULT_REGISTRY
from devices.machine import CpuCommon, GlobalState, Timer
from streams.qemu import RamPage, RamZero, StreamReader, StreamRecord, StreamWriter
from streams.snapshots import (
    CODECS,
    ChecksumError,
    read_index,
    read_records,
    save_snapshot,
    write_records,
)
from streams.snapshots._container import PREAMBLE_SIZE, ContainerWriter
from tests.fuzz.mutate import reseal
from tests.support.paths import CORPUS
from tests.support.snapshots import raw_items
from vmstate import (
    DecodeError,
    LimitExceededError,
    MalformedError,
    TruncatedError,
    UnsupportedError,
    VersionError,
)
from vmstate.limits import Limits

CODEC_NAMES = list(CODECS)
SMALL_LIMITS = Limits(max_buffer=1 << 20)


def make(cls: Any, **values: Any) -> Any:
    """A state object (state classes are attrs classes mypy cannot see through ``@state``)."""
    return cls(**values)


@cache
def small_snapshot(codec: str) -> bytes:
    """A snapshot of three typed devices: small enough to damage at every offset."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "small"
        devices = {"timer": make(Timer, cpu_ticks_offset=7), "cpu_common": make(CpuCommon, halted=1), "globalstate": make(GlobalState, size=6)}
        save_snapshot(path, devices, codec=codec)
        return path.read_bytes()


@cache
def reduced_records(name: str = "pc-7.2-virtio-all-legacy.mig") -> tuple[StreamRecord, ...]:
    """A real stream's records with all but three RAM page records dropped."""
    kept: list[StreamRecord] = []
    pages = 0
    with open(CORPUS / name, "rb") as source:
        for record in StreamReader(source, descriptions=DEFAULT_REGISTRY):
            if isinstance(record, (RamPage, RamZero)):
                pages += 1
                if pages > 3:
                    continue
            kept.append(record)
    return tuple(kept)


@cache
def reduced_snapshot(codec: str) -> bytes:
    out = io.BytesIO()
    write_records(reduced_records(), out, codec=codec)
    return out.getvalue()


def build(codec: str, items: list[Any]) -> bytes:
    """A correctly framed and checksummed snapshot around ``items`` (the index is the last item)."""
    sink = io.BytesIO()
    writer = ContainerWriter(sink, codec)
    chosen = CODECS[codec]
    last = writer.offset
    for item in items:
        last = writer.offset
        writer.write_item(chosen.encode(item))
    writer.finish(last)
    return sink.getvalue()


def seal(codec: str, content: bytes, index_offset: int = PREAMBLE_SIZE) -> bytes:
    """A snapshot file around ``content`` with a valid tail (the fuzzer's ``reseal``)."""
    return reseal(codec, content, index_offset)


def read_all(data: bytes, limits: Limits | None = None) -> list[StreamRecord]:
    kwargs: dict[str, Any] = {} if limits is None else {"limits": limits}
    return list(read_records(io.BytesIO(data), **kwargs, descriptions=DEFAULT_REGISTRY))


# ------------------------------------------------------------ damaged files


@pytest.mark.parametrize("codec", CODEC_NAMES)
def test_every_truncation_is_a_truncation_error_at_the_cut(codec: str) -> None:
    data = small_snapshot(codec)
    assert len(read_all(data)) == 3
    for cut in range(len(data)):
        with pytest.raises(TruncatedError) as caught:
            read_all(data[:cut])
        assert caught.value.offset == cut


@pytest.mark.parametrize("codec", CODEC_NAMES)
def test_a_flipped_byte_anywhere_is_detected(codec: str) -> None:
    data = small_snapshot(codec)
    for offset in range(len(data)):
        damaged = bytearray(data)
        damaged[offset] ^= 0x01 if offset % 2 else 0x80
        with pytest.raises(DecodeError) as caught:
            read_all(bytes(damaged))
        assert caught.value.offset is not None
        if 12 <= offset < len(data) - 56:
            assert isinstance(caught.value, ChecksumError), offset


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(CODEC_NAMES), st.data())
def test_a_flipped_byte_in_a_real_snapshot_is_a_checksum_error(codec: str, data: st.DataObject) -> None:
    snapshot = bytearray(reduced_snapshot(codec))
    offset = data.draw(st.integers(12, len(snapshot) - 33))
    snapshot[offset] ^= data.draw(st.integers(1, 255))
    with pytest.raises(DecodeError):
        read_all(bytes(snapshot))


def test_a_newer_format_version_is_a_version_error() -> None:
    data = bytearray(small_snapshot("msgpack"))
    data[8:10] = (2).to_bytes(2, "big")
    with pytest.raises(VersionError) as caught:
        read_all(bytes(data))
    assert (caught.value.offset, caught.value.version) == (8, 2)
    assert "format version 2" in str(caught.value)


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        (lambda d: d.replace(b"\r\n", b"\n"), "CR LF became LF"),
        (lambda d: d.replace(b"\n", b"\r\n"), "LF became CR LF"),
        (lambda d: bytes(b & 0x7F for b in d), "high bit"),
    ],
    ids=["crlf-to-lf", "lf-to-crlf", "7-bit"],
)
def test_text_mode_damage_is_named(damage: Any, why: str) -> None:
    with pytest.raises(MalformedError) as caught:
        read_all(damage(small_snapshot("json")))
    assert caught.value.offset == 0 and why in str(caught.value)


def test_unknown_codec_or_flags_are_unsupported() -> None:
    for offset, value in ((10, ord("X")), (11, 1)):
        data = bytearray(small_snapshot("cbor"))
        data[offset] = value
        with pytest.raises(UnsupportedError) as caught:
            read_all(bytes(data))
        assert caught.value.offset == offset


def test_a_qemu_stream_is_not_a_snapshot() -> None:
    with pytest.raises(MalformedError) as caught:
        read_all((CORPUS / "pc-2.2-virtio-all.mig").read_bytes())
    assert caught.value.offset == 0 and "not a snapshot" in str(caught.value)


# ------------------------------------------- hostile content, valid frame

WEIRD = [None, -1, 0, (1 << 64) - 1, -(1 << 63), "x" * 300, "", b"", b"\xff" * 9, [], {}, True, 1.5, [1, [2]], {"t": "eof"}]


def _mutate(value: Any, data: st.DataObject, depth: int = 0) -> Any:
    if isinstance(value, dict) and value and (depth == 0 or data.draw(st.booleans())):
        key = data.draw(st.sampled_from(sorted(value)))
        out = dict(value)
        if data.draw(st.integers(0, 5)) == 0:
            del out[key]
        else:
            out[key] = _mutate(value[key], data, depth + 1)
        return out
    if isinstance(value, list) and value and data.draw(st.booleans()):
        i = data.draw(st.integers(0, len(value) - 1))
        return [*value[:i], _mutate(value[i], data, depth + 1), *value[i + 1 :]]
    return data.draw(st.sampled_from(WEIRD))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(CODEC_NAMES), st.data())
def test_mutated_items_in_a_valid_frame_give_only_decode_errors(codec: str, data: st.DataObject) -> None:
    items = raw_items(reduced_snapshot(codec))
    for _ in range(data.draw(st.integers(1, 3))):
        action = data.draw(st.sampled_from(["mutate", "mutate", "mutate", "drop", "duplicate", "swap"]))
        i = data.draw(st.integers(0, len(items) - 1))
        j = data.draw(st.integers(0, len(items) - 1))
        if action == "mutate":
            items[i] = _mutate(items[i], data)
        elif action == "drop" and len(items) > 1:
            del items[i]
        elif action == "duplicate":
            items.insert(j, items[i])
        else:
            items[i], items[j] = items[j], items[i]
    try:
        records = read_all(build(codec, items))
    except DecodeError as error:
        event(f"{type(error).__name__}: {error.message.split(':')[1][:40] if ':' in error.message else error.message[:40]}")
        assert error.offset is not None
        assert "item" in str(error) or error.offset == 12
        return
    event("loaded")
    StreamWriter(io.BytesIO()).write_all(records)  # whatever loads can be written as QEMU bytes


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(CODEC_NAMES), st.binary(max_size=200))
def test_random_content_in_a_valid_frame_gives_only_decode_errors(codec: str, content: bytes) -> None:
    with pytest.raises(DecodeError):
        read_all(seal(codec, content or b"\x00"))


def test_the_index_must_agree_with_the_items() -> None:
    items = raw_items(reduced_snapshot("msgpack"))
    items[-1] = dict(items[-1], ram_pages=items[-1]["ram_pages"] + 1)
    with pytest.raises(MalformedError, match="index does not agree"):
        read_all(build("msgpack", items))
    with pytest.raises(MalformedError, match="without an index"):
        read_all(build("msgpack", items[:-1]))
    good = reduced_snapshot("msgpack")
    with pytest.raises(MalformedError, match="tail points at"):
        read_index(io.BytesIO(seal("msgpack", good[12:-56], 12)))


def test_a_bad_device_state_names_item_section_and_field() -> None:
    items = raw_items(reduced_snapshot("cbor"))
    n, item = next((n, i) for n, i in enumerate(items) if i["t"] == "device" and i["idstr"] == "timer")
    item["state"]["fields"]["cpu_ticks_offset"] = b"not an int"
    with pytest.raises(MalformedError) as caught:
        read_all(build("cbor", items))
    text = str(caught.value)
    assert caught.value.section == "timer" and caught.value.path == ("cpu_ticks_offset",)
    assert f"item {n} (device)" in text and caught.value.offset is not None and caught.value.offset > 12


def test_the_item_and_the_offset_in_the_rebuilt_section_are_fields_not_message_text() -> None:
    items = raw_items(reduced_snapshot("msgpack"))
    n, item = next((n, i) for n, i in enumerate(items) if i["t"] == "device" and i["idstr"] == "timer")
    item["state"]["fields"]["cpu_ticks_offset"] = "text"
    with pytest.raises(MalformedError) as caught:
        read_all(build("msgpack", items))
    error = caught.value
    assert (error.item, error.item_kind, error.section, error.path) == (n, "device", "timer", ("cpu_ticks_offset",))
    assert error.message == "the state does not fit 'timer' v2: expected an integer, got 'text'"
    item["state"]["fields"]["cpu_ticks_offset"] = 0
    item["state"]["subsections"] = {"timer/nope": {"version": 1, "fields": {}}}
    with pytest.raises(MalformedError) as unknown:
        read_all(build("msgpack", items))
    assert (unknown.value.item, unknown.value.section, unknown.value.path) == (n, "timer", ())
    assert not unknown.value.message.startswith("item") and f"item {n} (device): " in str(unknown.value)


# ----------------------------------------------------------- hostile lengths


def _peak(action: Any) -> int:
    tracemalloc.start()
    try:
        action()
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak


HUGE_HEADERS = {
    "msgpack": [b"\xc6\xff\xff\xff\xf0", b"\xdd\xff\xff\xff\xf0", b"\xdf\xff\xff\xff\xf0"],  # bin32, array32, map32
    "cbor": [b"\x5b" + (1 << 40).to_bytes(8, "big"), b"\x9b" + (1 << 40).to_bytes(8, "big"), b"\x7a\xff\xff\xff\xf0"],
}


@pytest.mark.parametrize("codec", ["msgpack", "cbor"])
def test_a_huge_announced_length_allocates_nothing(codec: str) -> None:
    for header in HUGE_HEADERS[codec]:
        snapshot = seal(codec, header + b"\x00" * 64)

        def read(data: bytes = snapshot) -> None:
            with pytest.raises((TruncatedError, LimitExceededError)):
                read_all(data)

        assert _peak(read) < 4 << 20


@pytest.mark.parametrize("codec", CODEC_NAMES)
def test_an_item_over_the_limit_is_refused(codec: str) -> None:
    # a 3 MiB byte string, with the item budget at 1 MiB + 1 MiB (JSON lines: twice that)
    item = {"t": "raw", "reason": "", "size": 3 << 20, "data": bytes(3 << 20)}
    if codec == "json":
        item["data"] = bytes(4 << 20)
    snapshot = seal(codec, CODECS[codec].encode(item))
    with pytest.raises(LimitExceededError) as caught:
        read_all(snapshot, SMALL_LIMITS)
    assert caught.value.offset == 12
    # with the default limits the same item decodes (and is refused for what it is)
    with pytest.raises(MalformedError, match="first item is 'raw'"):
        read_all(snapshot)


def test_a_blob_larger_than_its_limit_is_refused_before_it_is_gathered() -> None:
    items = [{"t": "snapshot", "content": "stream", "producer": "x"}, {"t": "vmdesc", "size": 1 << 40, "data": b"{}"}]
    with pytest.raises(LimitExceededError, match="max_vmdesc"):
        read_all(build("msgpack", items))


# ----------------------------------------------------------- hostile value counts

TINY_COUNTS = Limits(max_array_count=1000)  # an item may then hold 1000 + 65,536 values


def nested_empty_lists(codec: str, outer: int, inner: int) -> bytes:
    """One item: ``outer`` lists of ``inner`` empty lists each (1 byte per empty list in msgpack and CBOR)."""
    if codec == "msgpack":
        return b"\xdc" + outer.to_bytes(2, "big") + (b"\xdc" + inner.to_bytes(2, "big") + b"\x90" * inner) * outer
    if codec == "cbor":
        return b"\x99" + outer.to_bytes(2, "big") + (b"\x99" + inner.to_bytes(2, "big") + b"\x80" * inner) * outer
    return b"[" + b",".join([b"[" + b",".join([b"[]"] * inner) + b"]"] * outer) + b"]\n"


@pytest.mark.parametrize("codec", CODEC_NAMES)
def test_an_item_of_too_many_values_is_refused_before_it_is_built(codec: str) -> None:
    # 100 x 1000 empty lists: 100 KB of bytes, well within the byte budget, but 101,101 values
    snapshot = seal(codec, nested_empty_lists(codec, 100, 1000))

    def read() -> None:
        with pytest.raises(LimitExceededError) as caught:
            read_all(snapshot, TINY_COUNTS)
        assert caught.value.offset == 12 and "limits.max_array_count" in str(caught.value)

    assert _peak(read) < 8 << 20  # the lists built before the count ran out, not all of them
    # well within the budget (a list may count twice: as a value and as a container), the item decodes
    with pytest.raises(MalformedError, match="not a map"):
        read_all(seal(codec, nested_empty_lists(codec, 30, 1000)), TINY_COUNTS)


def test_a_huge_cbor_array_count_is_refused_from_its_head() -> None:
    for head in (b"\x9b" + (1 << 63).to_bytes(8, "big"), b"\xbb" + (1 << 62).to_bytes(8, "big")):
        with pytest.raises(LimitExceededError) as caught:
            read_all(seal("cbor", head + b"\x80" * 16))
        assert caught.value.offset == 12


plain_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(1 << 64) + 1, (1 << 64) - 1) | st.binary(max_size=40) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=8), inner, max_size=6),
    max_leaves=40,
)


@settings(max_examples=200, deadline=None)
@given(st.lists(plain_values, min_size=1, max_size=6))
def test_the_cbor_item_scanner_splits_a_sequence_as_cbor2_reads_it(values: list[Any]) -> None:
    import cbor2

    from streams.snapshots._cbor_scan import ItemScanner
    from streams.snapshots._codec import ObjectCounter
    from streams.snapshots._window import ContentWindow

    encoded = [cbor2.dumps(v) for v in values]
    data = b"".join(encoded)
    scanner = ItemScanner(ContentWindow(io.BytesIO(data), 0, len(data)), 1 << 20, ObjectCounter(Limits()))
    split = []
    while not scanner.at_end():
        split.append(scanner.next_item())
    assert [item for _, item in split] == encoded
    assert [offset for offset, _ in split] == [sum(map(len, encoded[:i])) for i in range(len(encoded))]


@pytest.mark.parametrize("codec", ["msgpack", "cbor"])
def test_a_record_map_with_text_and_byte_keys_is_malformed(codec: str) -> None:
    # found by the fuzzer (snapshot-cbor, one flipped bit: a text key became a byte string); listing the keys sorted them
    items = raw_items(reduced_snapshot(codec))
    item = next(i for i in items if i["t"] == "device" and i["idstr"] == "timer")
    item["state"][b"fields"] = item["state"].pop("fields")
    with pytest.raises(MalformedError, match="a record map has the keys") as caught:
        read_all(build(codec, items))
    assert caught.value.section == "timer" and caught.value.offset is not None
