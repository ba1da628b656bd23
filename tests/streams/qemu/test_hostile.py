"""Bad input: truncated, mutated and hostile streams give only our typed errors."""

from __future__ import annotations

import io
import json
from functools import lru_cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices import DEFAULT_REGISTRY
from streams.qemu import DeviceState, Eof, RamPage, RamZero, RawBody, StreamReader, StreamWriter
from tests.support.paths import CORPUS
from vmstate import DecodeError, LimitExceededError, MalformedError, TruncatedError, UnsupportedError, VMStateError
from vmstate.limits import Limits


@lru_cache(maxsize=None)
def reduced(name: str) -> tuple[bytes, int]:
    """A real stream with all but a few RAM page records dropped, and its EOF offset."""
    out = io.BytesIO()
    writer = StreamWriter(out)
    kept = 0
    eof = -1
    for record in StreamReader(open(CORPUS / name, "rb"), descriptions=DEFAULT_REGISTRY):
        if isinstance(record, (RamPage, RamZero)):
            kept += 1
            if kept > 3:
                continue
        if isinstance(record, Eof):
            eof = writer.offset
        writer.write(record)
    return out.getvalue(), eof


def parse(data: bytes, batch_pages: bool = False) -> list[object]:
    return list(StreamReader(io.BytesIO(data), descriptions=DEFAULT_REGISTRY, batch_pages=batch_pages))


SMALL = ["pc-2.2-virtio-all.mig", "pc-7.2-virtio-all-legacy.mig", "virt-7.2-virtio-mmio-all.mig", "pseries-2.2-virtio-all.mig"]


@pytest.mark.parametrize("name", SMALL)
def test_reduced_stream_is_still_a_valid_stream(name: str) -> None:
    data, _ = reduced(name)
    parse(data)


def _cut_points(data: bytes, eof: int) -> list[int]:
    """Every offset up to and through the EOF byte; every 61st inside the vmdesc JSON."""
    return list(range(eof + 2)) + list(range(eof + 2, len(data), 61))


@pytest.mark.slow
def test_every_truncation_point_gives_a_typed_error_with_offset() -> None:
    # A 7.2 stream: footers and vmdesc leave no ambiguity, so every cut fails.
    data, eof = reduced("pc-7.2-virtio-rng-legacy.mig")
    for cut in _cut_points(data, eof):
        if cut == eof + 1:
            parse(data[:cut])  # cut right after the EOF byte: a valid stream without vmdesc
            continue
        with pytest.raises(DecodeError) as info:
            parse(data[:cut])
        assert info.value.offset is not None and info.value.offset <= cut, cut


def _spans(data: bytes) -> list[tuple[int, int, str]]:
    """(start, end, kind) of each record of a stream, kind naming how it was decoded."""
    spans = []
    writer = StreamWriter(io.BytesIO())
    for record in StreamReader(io.BytesIO(data), descriptions=DEFAULT_REGISTRY):
        start = writer.offset
        writer.write(record)
        spans.append((start, writer.offset, _kind(record)))
    return spans


def _kind(record: object) -> str:
    """``raw``, ``sized by its end`` (one of several layouts, the section end chose) or ``described``."""
    if isinstance(record, RawBody):
        return "raw"
    if isinstance(record, DeviceState):
        layouts = sum(
            len(d.layouts()) for d in DEFAULT_REGISTRY.candidates(record.idstr, record.instance_id, record.version)
        )
        if layouts > 1:
            return "sized by its end"
    return "described"


@pytest.mark.slow
def test_truncation_of_an_old_layout_stream_fails_wherever_it_is_described() -> None:
    # The 2.2 layout has no footers and no vmdesc: a cut inside a section that
    # nothing describes, just after a 00 byte, reads like a complete section
    # followed by EOF.  So does a cut in the header after a section whose layout
    # the section end chooses (piix4_pm's memory slots, which the stream does not
    # count: a cut 10k+1 bytes into the next header reads as k more slots and EOF).
    # Everywhere else (framing, RAM, sections our state classes describe) a cut must fail;
    # each cut re-reads the stream up to it, so long bodies are sampled (_sampled_cuts).
    data, eof = reduced("pc-2.2-virtio-all.mig")
    checked = 0
    spans = _spans(data)
    assert any(kind == "sized by its end" for _, _, kind in spans)
    for (start, end, kind), previous in zip(spans, [None, *spans]):
        if kind == "raw" or previous is not None and previous[2] != "described":
            continue
        for cut in _sampled_cuts(start, min(end, eof)):
            with pytest.raises(DecodeError) as info:
                parse(data[:cut])
            assert info.value.offset is not None and info.value.offset <= cut
            checked += 1
    assert checked > 3000


def _sampled_cuts(start: int, end: int, edge: int = 48, stride: int = 23) -> list[int]:
    """Every cut in a record's first and last ``edge`` bytes (headers, small sections: all of it), every
    ``stride``-th in between: a prime stride meets every alignment of the 2-, 4-, 8- and 10-byte fields."""
    cuts = range(start + 1, end + 1)
    return [cut for cut in cuts if cut - start <= edge or end - cut < edge or (cut - start) % stride == 0]


def _mutate_and_parse(name: str, draw: st.DataObject) -> None:
    """1-4 flips, sets, deletions or insertions anywhere in a reduced real stream; only our typed errors."""
    data = bytearray(reduced(name)[0])
    for _ in range(draw.draw(st.integers(1, 4))):
        at = draw.draw(st.integers(0, len(data) - 1))
        action = draw.draw(st.sampled_from(["flip", "set", "delete", "insert"]))
        if action == "flip":
            data[at] ^= 1 << draw.draw(st.integers(0, 7))
        elif action == "set":
            data[at] = draw.draw(st.sampled_from([0x00, 0x05, 0x7E, 0xFF, 0x04]))
        elif action == "delete":
            del data[at : at + draw.draw(st.integers(1, 16))]
        else:
            data[at:at] = draw.draw(st.binary(min_size=1, max_size=16))
    try:
        parse(bytes(data), batch_pages=draw.draw(st.booleans()))
    except VMStateError as error:
        if isinstance(error, DecodeError):
            assert error.offset is not None or error.section == "vmdesc", error


@settings(max_examples=250, deadline=None)
@given(st.sampled_from(SMALL), st.data())
def test_random_mutations_give_only_typed_errors(name: str, draw: st.DataObject) -> None:
    _mutate_and_parse(name, draw)


@pytest.mark.slow
@settings(max_examples=2500, deadline=None)
@given(st.sampled_from(SMALL), st.data())
def test_many_random_mutations_give_only_typed_errors(name: str, draw: st.DataObject) -> None:
    _mutate_and_parse(name, draw)


def test_not_a_stream() -> None:
    with pytest.raises(MalformedError, match="magic") as info:
        parse(b"GIF89a" + bytes(40))
    assert info.value.offset == 0
    with pytest.raises(UnsupportedError, match="version 2"):
        parse(b"QEVM\x00\x00\x00\x02")
    with pytest.raises(TruncatedError):
        parse(b"QEV")


def test_hostile_vmdesc_length_is_refused_before_allocating() -> None:
    data, eof = reduced("pc-2.2-virtio-all.mig")
    hostile = data[: eof + 1] + b"\x06\xff\xff\xff\xf0{}"
    with pytest.raises(LimitExceededError, match="max_vmdesc"):
        parse(hostile)


def test_hostile_vmdesc_array_length_is_refused() -> None:
    data = (CORPUS / "pc-7.2-virtio-rng-legacy.mig").read_bytes()
    start = data.rindex(b'{"page_size"')
    desc = json.loads(data[start:])
    desc["devices"][0]["fields"][0]["array_len"] = 1 << 40
    raw = json.dumps(desc).encode()
    hostile = data[: start - 4] + len(raw).to_bytes(4, "big") + raw
    with pytest.raises(LimitExceededError, match="max_array_count"):
        parse(hostile)


def test_section_larger_than_the_limit_is_refused() -> None:
    data, _ = reduced("pc-2.2-virtio-all.mig")  # its raw `cpu` section holds 1851 bytes
    with pytest.raises(LimitExceededError, match="max_section_body") as info:
        for _ in StreamReader(io.BytesIO(data), limits=Limits(max_section_body=1024)):
            pass
    assert info.value.section == "cpu"


def test_error_message_names_offset_section_and_field() -> None:
    data = bytearray((CORPUS / "pc-7.2-virtio-rng-legacy.mig").read_bytes())
    start = data.rindex(b'{"page_size"')
    desc = json.loads(data[start:])
    timer = next(d for d in desc["devices"] if d["name"] == "timer")
    timer["fields"][2]["size"] = 4000  # the vmdesc now claims more bytes than the section holds
    raw = json.dumps(desc).encode()
    hostile = bytes(data[: start - 4]) + len(raw).to_bytes(4, "big") + raw
    with pytest.raises(DecodeError) as info:
        for _ in StreamReader(io.BytesIO(hostile)):
            pass
    text = str(info.value)
    assert "in timer" in text and "at 0x" in text


def test_a_vmdesc_entry_without_vmsd_name_must_be_a_save_state_section() -> None:
    from vmstate.description import Buffer
    from vmstate.vmdesc import OLD_STYLE_VERSION, description_from_vmdesc

    slirp = {"name": "slirp", "instance_id": 0, "size": 131, "fields": [{"name": "data", "size": 131, "type": "buffer"}]}
    description = description_from_vmdesc(slirp)
    assert (description.name, description.version) == ("slirp", OLD_STYLE_VERSION)
    assert [(f.name, f.kind) for f in description.fields] == [("data", Buffer(size=131, type_name="buffer"))]
    for bad in (
        {"name": "x", "fields": [{"name": "data", "size": 1, "type": "buffer"}, {"name": "more", "size": 1, "type": "buffer"}]},
        {"name": "x", "fields": [{"name": "other", "size": 1, "type": "buffer"}]},
        {"name": "x", "fields": [{"name": "data", "size": -1, "type": "buffer"}]},
        {"fields": [{"name": "data", "size": 1, "type": "buffer"}]},
    ):
        with pytest.raises(MalformedError):
            description_from_vmdesc(bad)
