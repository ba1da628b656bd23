"""The engine: declared state classes, versions, subsections, hooks, errors."""

from __future__ import annotations

from typing import Any

import attrs
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
from vmstate.description import Custom, CustomContext, Description, Field, Int, Record, Struct
from vmstate.engine import decode as engine_decode
from vmstate.engine import encode as engine_encode
from vmstate.kinds import BOOL, INT16, UINT8, UINT16, UINT32, UINT64, array, buffer, prefixed, unused, varray, vbuffer
from vmstate.limits import DEFAULT_LIMITS

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


# ---------------------------------------------------------------- encode: limits, custom codecs, refusals

class _Picky:
    """A codec that indexes its value as a dict and records the context it got."""

    def __init__(self) -> None:
        self.contexts: list[CustomContext] = []

    def decode(self, reader: ByteReader, context: CustomContext) -> Any:
        return {"x": reader.u8()}

    def encode(self, value: Any, context: CustomContext) -> bytes:
        self.contexts.append(context)
        return bytes((value["x"],))

    def describe(self) -> dict[str, Any]:
        return {}


def test_encode_threads_limits_and_depth_to_custom_codecs_as_decode_does() -> None:
    codec = _Picky()
    inner = Description(name="inner", version=1, fields=(Field(name="c", kind=Custom(codec=codec, type_name="picky")),))
    outer = Description(name="outer", version=1, fields=(Field(name="s", kind=Struct(description=inner)),))
    limits = attrs.evolve(DEFAULT_LIMITS, max_buffer=99)
    record = Record(version=1, fields={"s": Record(version=1, fields={"c": {"x": 7}})})
    assert engine_encode(outer, record, limits=limits) == b"\x07"
    (context,) = codec.contexts
    assert context.limits is limits and context.depth == 2 and context.path == ("s", "c")
    assert engine_decode(outer, ByteReader(b"\x07"), 1) == record


@pytest.mark.parametrize("value, cause", [(None, TypeError), ({}, KeyError), ({"x": 256}, ValueError), ([1], TypeError)])
def test_a_custom_codec_that_meets_a_wrong_shape_gives_an_encode_error_at_its_field(value: Any, cause: type) -> None:
    picky = Description(name="p", version=1, fields=(
        Field(name="n", kind=Int(width=1)), Field(name="c", kind=Custom(codec=_Picky(), type_name="picky")),
    ))
    with pytest.raises(EncodeError) as caught:
        engine_encode(picky, Record(version=1, fields={"n": 1, "c": value}))
    assert caught.value.path == ("c",) and isinstance(caught.value.__cause__, cause)
    assert caught.value.message.startswith(f"picky: {cause.__name__}")


def test_encode_refuses_what_no_stream_can_carry() -> None:
    described = Description(name="w", version=3, minimum_version=2, fields=(Field(name="a", kind=Int(width=1)),),
                            subsections=(Description(name="w/é€", version=1, needed=lambda _s: True),))
    for version in (1, 4):
        with pytest.raises(EncodeError, match=f"version {version} is outside the range 2..3"):
            engine_encode(described, Record(version=version, fields={"a": 0}))
    nested = Description(name="n", version=1, fields=(Field(name="s", kind=Struct(description=described)),))
    with pytest.raises(EncodeError, match="outside the range") as deep:
        engine_encode(nested, Record(version=1, fields={"s": Record(version=9, fields={"a": 0})}))
    assert deep.value.path == ("s",)
    with pytest.raises(EncodeError, match="not latin-1") as named:
        engine_encode(described, Record(version=2, fields={"a": 0}, subsections={"w/é€": Record(version=1)}))
    assert named.value.path == ()


def test_hooks_run_in_typed_around_the_engine_not_in_it() -> None:
    seen: list[str] = []

    @state(name="hooked", version=1, pre_save=lambda s: seen.append("pre_save"),
           pre_load=lambda s, v: seen.append("pre_load"), post_load=lambda s, v: seen.append(f"post_load {s.a}"))
    class Hooked:
        a: int = field(UINT8)

    description = description_of(Hooked)
    record = engine_decode(description, ByteReader(b"\x05"), 1)
    assert engine_encode(description, record) == b"\x05" and seen == []
    assert load(Hooked, ByteReader(b"\x05"), 1).a == 5 and seen == ["pre_load", "post_load 5"]
    assert save(Hooked(a=6)) == b"\x06" and seen[-1] == "pre_save"
