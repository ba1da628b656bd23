"""What QEMU 10.0 changed in virtio-gpu and virtio-mem, on its real streams and on hand-built bytes.

The streams are paused QEMU 10.0.2 VMs (compat_fixtures/generate.py, ``*-10.0-*``): ``pc-10.0-*`` on
pc-i440fx-10.0, ``*-10.0-on-7.2-*`` on 7.2's machine types under QEMU 10.0.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices import DEFAULT_REGISTRY
from devices.virtio.gpu import GPU_FIELD, GPU_FIELD_ALTERNATIVES, GPU_FIELD_SCANOUT_V2
from devices.virtio.mem import VirtIOMEMEarly
from streams.files import open_stream
from streams.qemu import DeviceState, StreamReader
from tests.support.paths import CORPUS
from vmstate.description import Custom, Description, Record
from vmstate.engine import decode, encode
from vmstate.errors import DecodeError, MalformedError
from vmstate.typed import description_of
from vmstate.wire import ByteReader

MiB = 1 << 20
FB = ("fb_format", "fb_bytes_pp", "fb_width", "fb_height", "fb_stride", "fb_offset")


def _typed(name: str, suffix: str) -> DeviceState:
    with open_stream(CORPUS / name) as source:
        found = [r for r in StreamReader(source, descriptions=DEFAULT_REGISTRY)
                 if isinstance(r, DeviceState) and r.idstr.endswith(suffix)]
    assert len(found) == 1, f"{len(found)} {suffix} sections in {name}"
    assert found[0].source == "typed", found[0].fallback
    return found[0]


def _codec(state: DeviceState) -> Any:
    kind = state.description.fields[-1].kind
    assert isinstance(kind, Custom)
    return kind.codec


def _scanouts(state: DeviceState) -> list[Record]:
    scanouts = state.record.fields["virtio-gpu"].fields["scanouts"].fields
    assert scanouts["max_outputs"] == len(scanouts["scanout"])
    return list(scanouts["scanout"])


@pytest.mark.parametrize(("name", "first", "rest"), [
    ("pc-10.0-virtio-more-modern.mig.xz", True, None),          # 10.0's machine type: version 2
    ("q35-10.0-virtio-more-modern.mig.xz", True, None),
    ("virt-10.0-virtio-mmio-input-gpu.mig.xz", True, None),
    ("pc-10.0-on-7.2-virtio-more-modern.mig.xz", False, None),  # hw_compat_8_2: version 1
    ("virt-10.0-on-7.2-virtio-mmio-input-gpu-v2.mig.xz", False, None),
    ("pc-10.0-virtio-vga.mig.xz", True, True),
    ("pc-10.0-on-7.2-virtio-vga.mig.xz", False, True),          # scanout 1 gated by another byte
    ("pc-7.2-virtio-vga.mig", False, False),                     # QEMU 7.2 never sends the framebuffer
])
def test_the_section_end_picks_which_scanouts_carry_a_framebuffer(name: str, first: bool, rest: bool | None) -> None:
    state = _typed(name, "/virtio-gpu")
    scanouts = _scanouts(state)
    assert [all(f in s.fields for f in FB) for s in scanouts] == [first] + [bool(rest)] * (len(scanouts) - 1)
    assert not any(f in s.fields for s in scanouts for f in FB) or all(
        s.fields[f] == 0 for s in scanouts for f in FB if f in s.fields)  # paused: no framebuffer set
    codec = _codec(state)
    assert codec.first_fb == first and (len(scanouts) == 1 or codec.rest_fb == rest)


def _gpu_description(field: Any) -> Description:
    return Description(name="gpu trailing", version=1, minimum_version=1, fields=(field,))


_SCANOUT = st.fixed_dictionaries({k: st.integers(0, 2**32 - 1) for k in (
    "resource_id", "width", "height", "x", "y", "cursor_resource_id", "cursor_hot_x", "cursor_hot_y",
    "cursor_pos_x", "cursor_pos_y", *FB)})


@settings(max_examples=60, deadline=None)
@given(layout=st.sampled_from((GPU_FIELD, *GPU_FIELD_ALTERNATIVES)), scanouts=st.lists(_SCANOUT, min_size=1, max_size=4))
def test_every_layout_writes_back_what_it_reads(layout: Any, scanouts: list[dict[str, int]]) -> None:
    codec = layout.kind.codec
    items = [Record(version=1, fields={k: v for k, v in s.items()
                                        if k not in FB or (codec.first_fb if i == 0 else codec.rest_fb)})
             for i, s in enumerate(scanouts)]
    value = Record(version=1, fields={"resources": [], "scanouts": Record(version=1, fields={
        "enable": 1, "max_outputs": len(items), "scanout": items})})
    description = _gpu_description(layout)
    data = encode(description, Record(version=1, fields={"virtio-gpu": value}))
    with_fb = sum(codec.first_fb if i == 0 else codec.rest_fb for i in range(len(items)))
    assert len(data) == 4 + 8 + 40 * len(items) + 24 * with_fb
    reader = ByteReader(data)
    again = decode(description, reader, 1)
    assert reader.offset == len(data) and again.fields["virtio-gpu"] == value


def test_a_framebuffer_layout_reads_short_bytes_as_a_truncation_at_the_missing_field() -> None:
    seven_two = encode(_gpu_description(GPU_FIELD), Record(version=1, fields={"virtio-gpu": Record(version=1, fields={
        "resources": [], "scanouts": Record(version=1, fields={"enable": 0, "max_outputs": 1, "scanout": [
            Record(version=1, fields={k: 0 for k in ("resource_id", "width", "height", "x", "y", "cursor_resource_id",
                                                     "cursor_hot_x", "cursor_hot_y", "cursor_pos_x", "cursor_pos_y")})]})})}))
    with pytest.raises(DecodeError) as caught:
        decode(_gpu_description(GPU_FIELD_SCANOUT_V2), ByteReader(seven_two), 1)
    assert isinstance(caught.value, EOFError) and caught.value.offset == len(seven_two)
    assert caught.value.path[-1] == "fb_format"


def test_ten_machine_types_send_virtio_mem_early_and_a_short_device_part() -> None:
    early = _typed("pc-10.0-virtio-more-modern.mig.xz", "/virtio-mem-device-early")
    checks = early.record.fields["tmp"].fields
    assert (checks["region_size"], checks["block_size"]) == (256 * MiB, MiB)
    assert early.record.fields["size"] == 0 and early.record.fields["bitmap"] == [0] * 4  # 256 blocks
    mem = _typed("pc-10.0-virtio-more-modern.mig.xz", "/virtio-mem")
    assert mem.record.fields["virtio"].fields["device"].fields == {
        "usable_region_size": mem.record.fields["virtio"].fields["device"].fields["usable_region_size"],
        "requested_size": 16 * MiB}
    seven_two = _typed("pc-10.0-on-7.2-virtio-more-modern.mig.xz", "/virtio-mem")  # x-early-migration off
    device = seven_two.record.fields["virtio"].fields["device"].fields
    assert (device["region_size"], device["block_size"], device["requested_size"]) == (256 * MiB, MiB, 16 * MiB)
    with open_stream(CORPUS / "pc-10.0-on-7.2-virtio-more-modern.mig.xz") as source:
        assert not any(isinstance(r, DeviceState) and r.idstr.endswith("-early")
                       for r in StreamReader(source, descriptions=DEFAULT_REGISTRY))


def test_virtio_mem_early_refuses_a_block_size_that_cannot_size_the_bitmap() -> None:
    description = description_of(VirtIOMEMEarly)
    hostile = (0).to_bytes(8, "big") + (1 << 40).to_bytes(8, "big") + bytes(8) + bytes(4) + bytes(8)
    with pytest.raises(MalformedError) as caught:
        decode(description, ByteReader(hostile), 1)
    assert caught.value.path == ("bitmap",) and caught.value.offset == 36
