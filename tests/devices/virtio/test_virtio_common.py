"""The ``virtio`` vmsd's subsections carry QEMU 7.2's ``needed`` rules; saving a device derives from them."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices.cpu import AARCH64, PPC64, X86_64, Endian
from devices.virtio.common import NEEDED, SUBSECTION_NAMES, VIRTIO_QUEUE_MAX, virtio_description
from devices.virtio.device import VirtIODevice
from devices.virtio.sections import section_description
from streams.files import open_stream
from tests.support.paths import CORPUS
from vmstate.description import Record
from vmstate.edit import virtio_devices
from vmstate.engine import decode, encode
from vmstate.errors import EncodeError
from vmstate.wire import ByteReader

#: a modern PCI device whose stream carries virtio/64bit_features, virtqueues and extra_state
MODERN = CORPUS / "q35-7.2-virtio-net-modern.mig"


def _device(path: Path) -> VirtIODevice:
    with open_stream(path) as source:
        ((_idstr, device),) = list(virtio_devices(source))
    return device


def qemu_7_2_subsections(d: VirtIODevice) -> list[str]:
    """The subsections QEMU 7.2's ``vmstate_virtio`` writes, as hw/virtio/virtio.c decides them."""
    out = []
    # virtio_device_endian_needed: virtio_vdev_has_feature (the guest's features) picks the comparison
    if d.guest_features >> 32 & 1:
        out += ["virtio/device_endian"] if d.device_endian != Endian.LITTLE else []
    elif d.device_endian != d.target.default_endian:
        out.append("virtio/device_endian")
    if d.host_features >> 32 != 0:  # virtio_64bit_features_needed
        out.append("virtio/64bit_features")
    if d.host_features >> 32 & 1:  # virtio_virtqueue_needed: virtio_host_has_feature(VERSION_1)
        out.append("virtio/virtqueues")
    if any(q.num != q.num_default for q in d.vqs if q.num_default is not None):  # virtio_ringsize_needed
        out.append("virtio/ringsize")
    if d.broken:  # virtio_broken_needed
        out.append("virtio/broken")
    if d.transport_extra_state:  # virtio_extra_state_needed: k->has_extra_state
        out.append("virtio/extra_state")
    if d.started:  # virtio_started_needed
        out.append("virtio/started")
    if d.host_features >> 34 & 1:  # virtio_packed_virtqueue_needed: VIRTIO_F_RING_PACKED
        out.append("virtio/packed_virtqueues")
    if d.disabled:  # virtio_disabled_needed
        out.append("virtio/disabled")
    return out


def test_every_subsection_declares_its_rule_on_both_transports() -> None:
    assert tuple(NEEDED) == SUBSECTION_NAMES
    for transport in ("pci", "mmio"):
        subsections = virtio_description(transport).subsections
        assert [s.name for s in subsections] == list(SUBSECTION_NAMES)
        assert [s.needed for s in subsections] == [NEEDED[name] for name in SUBSECTION_NAMES]


_BASE = _device(MODERN)


@st.composite
def devices(draw: st.DrawFn) -> VirtIODevice:
    device = copy.deepcopy(_BASE)
    device.target = draw(st.sampled_from([X86_64, PPC64, AARCH64]))
    device.device_endian = draw(st.sampled_from([Endian.LITTLE, Endian.BIG]))
    # the low word stays the stream's: virtio-net's own part depends on its features (VIRTIO_NET_F_*)
    device.guest_features = _BASE.guest_features & 0xFFFF_FFFF | draw(st.integers(0, 2**32 - 1)) << 32
    device.host_features = draw(st.integers(0, 2**64 - 1))
    device.transport_extra_state = draw(st.booleans())
    device.broken, device.started, device.disabled = draw(st.tuples(st.booleans(), st.booleans(), st.booleans()))
    for queue in device.vqs:
        queue.num_default = draw(st.none() | st.sampled_from([64, 256, 1024]))
        queue.num = draw(st.sampled_from([64, 256, 1024]))
        queue.avail, queue.used = draw(st.integers(0, 2**64 - 1)), draw(st.integers(0, 2**64 - 1))
    return device


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(devices())
def test_derived_subsections_are_qemus_rules(device: VirtIODevice) -> None:
    expected = qemu_7_2_subsections(device)
    assert device.subsections_needed() == expected
    if "virtio/packed_virtqueues" in expected:  # packed queue state is never in the model: only as received
        with pytest.raises(EncodeError, match="virtio/packed_virtqueues is needed"):
            device.to_record()
        return
    record = device.to_record()
    assert list(record.subsections) == expected
    subs = record.subsections
    if "virtio/device_endian" in subs:
        assert subs["virtio/device_endian"].fields == {"device_endian": int(device.device_endian)}
    if "virtio/64bit_features" in subs:
        assert subs["virtio/64bit_features"].fields == {"guest_features": device.guest_features}
    for name, attribute in (("virtio/broken", "broken"), ("virtio/started", "started"), ("virtio/disabled", "disabled")):
        if name in subs:
            assert subs[name].fields == {attribute: True}
    if "virtio/extra_state" in subs:
        assert subs["virtio/extra_state"] == _BASE.record.subsections["virtio/extra_state"]  # kept as received
    for name, fields in (("virtio/virtqueues", ("avail", "used")), ("virtio/ringsize", ("num_default",))):
        if name in subs:
            queues = subs[name].fields["vq"]
            assert len(queues) == VIRTIO_QUEUE_MAX
            got = [tuple(q.fields[f] for f in fields) for q in queues]
            want = [tuple(getattr(q, f) or 0 for f in fields) for q in device.vqs]
            assert got == want + [(0,) * len(fields)] * (VIRTIO_QUEUE_MAX - len(device.vqs))


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(devices())
def test_a_saved_device_decodes_to_the_same_subsections(device: VirtIODevice) -> None:
    if device.subsections_needed().count("virtio/packed_virtqueues"):
        return
    description = section_description("virtio-net", "pci")
    section = Record(version=11, fields={"virtio": device.to_record()})
    data = encode(description, section)
    again = decode(description, ByteReader(data), 11).fields["virtio"]
    assert list(again.subsections) == qemu_7_2_subsections(device)


def test_changing_a_rule_input_changes_only_its_subsection() -> None:
    device = copy.deepcopy(_BASE)
    before = device.subsections_needed()
    assert before == list(_BASE.record.subsections)  # an unchanged device: what the stream carried
    device.broken = True
    assert device.subsections_needed() == [*before[:2], "virtio/broken", *before[2:]]  # declared before extra_state
    device.broken = False
    device.vqs[0].num_default = device.vqs[0].num * 2
    assert "virtio/ringsize" in device.subsections_needed()
