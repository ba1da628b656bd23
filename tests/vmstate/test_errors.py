"""The error tree: builtin parents of the leaves, locations kept in fields and rendered by ``str()``."""

from __future__ import annotations

import pytest

from vmstate.errors import (
    DecodeError,
    DescriptionError,
    EncodeError,
    LimitExceededError,
    MalformedError,
    TruncatedError,
    UnknownSectionError,
    UnknownSubsectionError,
    UnnamedSectionError,
    UnsupportedError,
    VersionError,
    VMStateError,
)


@pytest.mark.parametrize("leaf, builtin", [
    (TruncatedError, EOFError), (MalformedError, ValueError), (LimitExceededError, ValueError),
    (VersionError, ValueError), (UnknownSubsectionError, ValueError), (UnknownSectionError, ValueError),
    (UnnamedSectionError, ValueError), (UnsupportedError, NotImplementedError),
    (DescriptionError, ValueError), (EncodeError, ValueError),
])
def test_every_leaf_is_also_the_builtin_it_resembles(leaf: type, builtin: type) -> None:
    assert issubclass(leaf, VMStateError) and issubclass(leaf, builtin)
    with pytest.raises(builtin):
        raise leaf("x")


def test_a_decode_error_keeps_every_location_in_fields_and_str_renders_them() -> None:
    error = TruncatedError("expected 2 bytes, got 0", offset=0x1A2F, path=("vq", 3, "last_avail_idx"), version=11,
                           section_offset=7)
    error.add_context(section="0000:00:03.0/virtio-net", offset=1, item=4, item_kind="device")
    error.add_context(item=5, item_kind="ram", path=("other",))  # never overwrites
    assert (error.offset, error.section, error.item, error.item_kind, error.section_offset) == (
        0x1A2F, "0000:00:03.0/virtio-net", 4, "device", 7)
    assert error.message == "expected 2 bytes, got 0"
    assert str(error) == ("at 0x1a2f in 0000:00:03.0/virtio-net: vq[3].last_avail_idx (v11): "
                          "item 4 (device): expected 2 bytes, got 0 (byte 7 of the section)")
    assert str(DecodeError("bad", item=0)) == "item 0: bad"


def test_an_encode_error_keeps_its_section_in_a_field() -> None:
    error = EncodeError("expected an integer, got 'x'", path=("a", 1), section="timer")
    assert error.message == "expected an integer, got 'x'" and error.section == "timer"
    assert str(error) == "in timer: a[1]: expected an integer, got 'x'"
    assert str(EncodeError("m", section="s")) == "in s: m" and str(EncodeError("m")) == "m"
