"""Descriptions export as JSON with every kind, gate and subsection."""

from __future__ import annotations

import json

from devices import DEFAULT_REGISTRY
from devices.virtio.net import VirtIONet
from devices.virtio.sections import DEVICE_CLASSES, section_description
from vmstate.description import Array, Bool, Buffer, Description, Field, Int, Items, Prefixed, Struct, Unused
from vmstate.kinds import INT32_LE
from vmstate.schema import description_to_json
from vmstate.typed import description_of


def test_every_kind_and_gate_is_exported() -> None:
    inner = Description(name="inner", version=1, fields=(Field(name="x", kind=Int(width=2)),))
    description = Description(
        name="all",
        version=3,
        minimum_version=1,
        fields=(
            Field(name="i", kind=Int(width=4, signed=True)),
            Field(name="le", kind=Int(width=8, little=True)),
            Field(name="b", kind=Bool()),
            Field(name="n", kind=Int(width=1), since_version=2),
            Field(name="fixed", kind=Buffer(size=3)),
            Field(name="var", kind=Buffer(length_from="n", multiply=6)),
            Field(name="p", kind=Prefixed(prefix_width=2)),
            Field(name="pad", kind=Unused(size=4)),
            Field(name="a", kind=Array(element=Int(width=2), count_from="n", adjust=-1)),
            Field(name="items", kind=Items(elements=(Bool(), Int(width=1)))),
            Field(name="s", kind=Struct(description=inner, version=1), exists=lambda view, v: True),
        ),
        subsections=(Description(name="all/sub", version=1, needed=lambda s: True, fields=(Field(name="y", kind=Bool()),)),),
    )
    out = json.loads(json.dumps(description_to_json(description)))
    kinds = {f["name"]: f for f in out["fields"]}
    assert out["minimum_version"] == 1 and out["version"] == 3
    assert kinds["i"]["signed"] and kinds["le"]["byte_order"] == "little"
    assert kinds["n"]["since_version"] == 2
    assert kinds["var"] == {"name": "var", "kind": "buffer", "type": "buffer", "length_from": "n", "multiply": 6}
    assert kinds["a"]["adjust"] == -1 and kinds["a"]["element"]["width"] == 2
    assert kinds["pad"] == {"name": "pad", "kind": "unused", "size": 4}
    assert kinds["s"]["description"]["name"] == "inner" and "exists" in kinds["s"]
    assert out["subsections"][0]["name"] == "all/sub" and "needed" in out["subsections"][0]


def test_typed_and_virtio_descriptions_export() -> None:
    net = description_to_json(description_of(VirtIONet))
    assert net["name"] == "virtio-net-device" and net["minimum_version"] == 2
    assert next(f for f in net["fields"] if f["name"] == "curr_guest_offloads")["exists"].endswith("_guest_offloads")
    for description in DEFAULT_REGISTRY.descriptions():
        json.dumps(description_to_json(description))
    for name in DEVICE_CLASSES:
        layout = description_to_json(section_description(name, "pci"))["fields"][0]["layout"]
        assert [q["fields"][0]["name"] for q in layout["queues"]] == ["vq", "vq"]
        assert len(layout["virtio"]["subsections"]) == 9


def test_a_little_endian_int_is_not_named_like_qemus_less_or_equal_int32() -> None:
    assert Int(width=4, little=True).type_name == "uint32 little-endian"
    assert Int(width=4, signed=True, little=True).type_name == "int32 little-endian"
    assert Int(width=1, little=True).type_name == "uint8"
    assert INT32_LE.type_name == "int32 le" and not INT32_LE.little
