"""``LazyLayouts``: a description's alternatives built as a reader reaches them, each once."""

from __future__ import annotations

import io

import attrs
import pytest

from streams.qemu import DeviceState, StreamReader
from vmstate.description import Description, Field, Int, LazyLayouts
from vmstate.kinds import array
from vmstate.lookup import FunctionLookup


def _layout(count: int) -> Description:
    return Description(name="dev", version=1, fields=(Field(name="n", kind=array(Int(width=2), count)),))


def test_each_alternative_is_made_once_when_first_reached() -> None:
    made: list[int] = []

    def make(i: int) -> Description:
        made.append(i)
        return _layout(i + 1)

    base = attrs.evolve(_layout(0), alternatives=LazyLayouts(5, make))
    layouts = base.layouts()
    assert len(layouts) == 6 and made == []
    assert layouts[0] is base and made == []
    assert layouts[3] is layouts[3] and made == [2]
    assert layouts[-1].fields[0].kind == array(Int(width=2), 5) and made == [2, 4]
    assert [d.fields[0].kind.count for d in layouts[1:3]] == [1, 2] and made == [2, 4, 0, 1]
    with pytest.raises(IndexError):
        layouts[6]
    assert [d.fields[0].kind.count for d in layouts] == [0, 1, 2, 3, 4, 5] and sorted(made) == [0, 1, 2, 3, 4]


def _stream(values: int) -> bytes:
    """A 2.2-layout stream (no footers): one FULL section ``dev`` holding ``values`` be16 zeros, then EOF."""
    header = b"\x04" + (1).to_bytes(4, "big") + b"\x03dev" + (0).to_bytes(4, "big") + (1).to_bytes(4, "big")
    return b"QEVM" + (3).to_bytes(4, "big") + header + bytes(2 * values) + b"\x00"


def test_the_reader_builds_only_the_layouts_it_tries() -> None:
    made: list[int] = []

    def make(i: int) -> Description:
        made.append(i)
        return _layout(i + 1)

    base = attrs.evolve(_layout(0), alternatives=LazyLayouts(256, make))
    lookup = FunctionLookup(lambda idstr, instance, version: base if idstr == "dev" else None)
    (state,) = [r for r in StreamReader(io.BytesIO(_stream(3)), descriptions=lookup) if isinstance(r, DeviceState)]
    assert len(state.record.fields["n"]) == 3
    assert made == [0, 1, 2]  # the layouts of 1, 2 and 3 values; none of the 253 larger ones
