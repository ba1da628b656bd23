"""The engine: declared state classes, versions, subsections, hooks, errors."""

from __future__ import annotations

import pytest

from vmstate import (
    ByteReader,
    DescriptionError,
    EncodeError,
    Subsection,
    TruncatedError,
    UnknownSubsectionError,
    VersionError,
    decode,
    description_of,
    field,
    load,
    save,
    state,
    struct,
    to_record,
)
from vmstate.kinds import BOOL, INT16, UINT8, UINT16, UINT32, UINT64, array, buffer, prefixed, unused, varray, vbuffer

calls: list[str] = []


@state(name="ring", version=1)
class Ring:
    addr: int = field(UINT64)
    size: int = field(UINT16)


@state(
    name="dev",
    version=3,
    minimum_version=1,
    subsections=(
        Subsection("dev/endian", 1, needed=lambda s: s.endian != 0),
        Subsection("dev/endian/extra", 2, minimum_version=1, needed=lambda s: s.extra != 0, parent="dev/endian"),
        Subsection("dev/started", 1, needed=lambda s: s.started),
    ),
    pre_save=lambda s: calls.append("pre_save"),
    pre_load=lambda s, v: calls.append(f"pre_load v{v}"),
    post_load=lambda s, v: calls.append(f"post_load v{v}"),
)
class Dev:
    status: int = field(UINT8)
    pad: bytes = field(unused(2))
    num: int = field(UINT32)
    rings: list[Ring] = field(varray(struct(Ring), "num"))
    name_len: int = field(UINT16)
    name: bytes = field(vbuffer("name_len", multiply=2))
    level: int = field(INT16, since_version=2)
    tag: bytes = field(prefixed(1), exists=lambda s, v: s.status & 1)
    cfg: list[int] = field(array(UINT8, 3), since_version=3)
    endian: int = field(UINT8, subsection="dev/endian")
    extra: int = field(UINT32, subsection="dev/endian/extra")
    started: bool = field(BOOL, subsection="dev/started")


def sample() -> Dev:
    return Dev(
        status=1,
        num=2,
        rings=[Ring(addr=0x1000, size=256), Ring(addr=0x2000, size=128)],
        name_len=2,
        name=b"abcd",
        level=-5,
        tag=b"xyz",
        cfg=[1, 2, 3],
        endian=1,
        extra=7,
        started=True,
    )


def roundtrip(obj: Dev, version: int | None = None) -> Dev:
    data = save(obj, version=version)
    return load(Dev, ByteReader(data), version or 3)


def test_save_load_roundtrip_keeps_every_field() -> None:
    obj = sample()
    assert roundtrip(obj) == obj


def test_wire_layout_is_qemus() -> None:
    data = save(Dev(status=0, num=0, name_len=0, started=False))
    # status, 2 unused, num, name_len, level, cfg[3]; no tag (test false), no subsections
    assert data == bytes([0, 0, 0]) + b"\0\0\0\0" + b"\0\0" + b"\0\0" + bytes(3)


def test_subsection_written_only_when_needed_and_nested() -> None:
    data = save(sample())
    assert b"\x05\x0adev/endian\x00\x00\x00\x01\x01" in data
    assert b"\x05\x10dev/endian/extra\x00\x00\x00\x02\x00\x00\x00\x07" in data
    assert b"dev/started" in data
    plain = save(Dev(num=0, name_len=0))
    assert b"dev/" not in plain


def test_absent_subsection_leaves_defaults() -> None:
    obj = sample()
    obj.endian = 0
    obj.extra = 9  # not sent: its parent subsection is not needed
    loaded = roundtrip(obj)
    assert loaded.endian == 0 and loaded.extra == 0 and loaded.started is True


def test_older_version_skips_newer_fields_and_fills_defaults() -> None:
    obj = sample()
    v1 = save(obj, version=1)
    assert len(v1) == len(save(obj)) - 2 - 3
    loaded = load(Dev, ByteReader(v1), 1)
    assert loaded.level == 0 and loaded.cfg == [0, 0, 0]
    assert loaded.rings == obj.rings


def test_version_outside_range_names_both_numbers() -> None:
    with pytest.raises(VersionError, match=r"version 4 .* 1\.\.3"):
        load(Dev, ByteReader(save(sample())), 4)
    with pytest.raises(VersionError, match=r"version 0 .* 1\.\.3"):
        to_record(sample(), version=0)


def test_unknown_subsection_is_an_error_naming_it() -> None:
    data = save(Dev(num=0, name_len=0)) + b"\x05\x07dev/zzz\x00\x00\x00\x01"
    with pytest.raises(UnknownSubsectionError, match="dev/zzz"):
        load(Dev, ByteReader(data), 3)


def test_foreign_subsection_is_left_for_the_caller() -> None:
    data = save(Dev(num=0, name_len=0)) + b"\x05\x07xyz/abc\x00\x00\x00\x01"
    reader = ByteReader(data)
    load(Dev, reader, 3)
    assert reader.peek(2) == b"\x05\x07"


def test_subsection_version_window_is_checked() -> None:
    data = save(Dev(num=0, name_len=0, started=True)).replace(b"dev/started\x00\x00\x00\x01", b"dev/started\x00\x00\x00\x09")
    with pytest.raises(VersionError, match="dev/started"):
        load(Dev, ByteReader(data), 3)


def test_hooks_run_in_qemu_order() -> None:
    calls.clear()
    roundtrip(sample())
    assert calls == ["pre_save", "pre_load v3", "post_load v3"]


def test_truncation_names_offset_and_field_path() -> None:
    data = save(sample())
    cut = data[:17]  # inside rings[0]
    with pytest.raises(TruncatedError) as info:
        load(Dev, ByteReader(cut), 3)
    assert info.value.path == ("rings", 1, "addr") or info.value.path[:2] == ("rings", 0) or info.value.path[0] == "rings"
    assert info.value.offset is not None and info.value.offset <= 17
    assert "rings" in str(info.value)


def test_every_truncation_point_raises_truncated_error() -> None:
    obj = sample()
    data = save(obj)
    fields_end = data.index(b"\x05\x0adev/endian")
    for cut in range(len(data)):
        reader = ByteReader(data[:cut])
        if cut < fields_end:
            with pytest.raises(TruncatedError) as info:
                load(Dev, reader, 3)
            assert info.value.offset is not None and info.value.offset <= cut
            assert info.value.path
            continue
        # Within the optional subsections a cut either fails as truncated or,
        # like QEMU, ends the state at the last complete subsection.
        try:
            loaded = load(Dev, reader, 3)
        except TruncatedError as error:
            assert error.offset is not None and error.offset <= cut
        else:
            assert reader.offset <= cut
            assert loaded.status == obj.status and loaded.rings == obj.rings


def test_encode_rejects_values_that_do_not_fit() -> None:
    obj = sample()
    obj.status = 256
    with pytest.raises(EncodeError, match="status"):
        save(obj)
    obj = sample()
    obj.name = b"abc"
    with pytest.raises(EncodeError, match="name"):
        save(obj)
    obj = sample()
    obj.rings = obj.rings[:1]
    with pytest.raises(EncodeError, match="rings"):
        save(obj)


def test_bad_descriptions_are_refused() -> None:
    with pytest.raises(DescriptionError):
        buffer(-1)

    with pytest.raises(DescriptionError, match="must start with"):

        @state(name="a", version=1, subsections=(Subsection("b/c", 1, needed=lambda s: True),))
        class Bad:
            x: int = field(UINT8, subsection="b/c")


def test_description_is_inspectable_data() -> None:
    description = description_of(Dev)
    assert [f.name for f in description.fields][:3] == ["status", "pad", "num"]
    assert [s.name for s in description.subsections] == ["dev/endian", "dev/started"]
    assert description.subsections[0].subsections[0].name == "dev/endian/extra"
    record = decode(description, ByteReader(save(sample())), 3)
    assert record.fields["rings"][1].fields["size"] == 128
    assert list(record.subsections) == ["dev/endian", "dev/started"]
