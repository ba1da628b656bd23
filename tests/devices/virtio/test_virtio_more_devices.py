"""virtio-input, -gpu, -iommu and -mem: real QEMU 7.2 streams decode typed, byte for byte.

The fixtures are paused VMs (compat_fixtures/generate.py: ``*-7.2-virtio-{input,gpu,iommu,mem}-modern``,
``pc-7.2-virtio-vga``, ``virt-7.2-virtio-pci-more``, ``virt-7.2-virtio-mmio-input-gpu[-v2]`` and the
2.2-layout ``pc-2.2-virtio-more``).  A paused guest never creates a GPU resource or an IOMMU domain,
so those lists are empty on the wire; hand-built ones are checked against QEMU itself: it loads
them and saves them again.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any, Callable

import attrs
import pytest

from compat_fixtures import generate
from devices import DEFAULT_REGISTRY
from devices.virtio.containers import GTree, QList
from devices.virtio.gpu import GPU_FIELD
from devices.virtio.iommu import IOMMUEndpoint, IOMMUMapping, VirtIOIOMMU
from devices.virtio.mem import VirtIOMEM
from streams.files import open_stream
from streams.qemu import DeviceState, StreamReader, StreamWriter, check_stream
from tests.support.paths import CORPUS
from vmstate import from_record
from vmstate.description import Custom, Description, Field, Record
from vmstate.engine import decode, encode
from vmstate.errors import DecodeError, LimitExceededError, MalformedError, TruncatedError
from vmstate.limits import Limits
from vmstate.typed import description_of
from vmstate.wire import ByteReader

MiB = 1 << 20


def _states(name: str) -> list[DeviceState]:
    with open_stream(CORPUS / name) as source:
        return [r for r in StreamReader(source, descriptions=DEFAULT_REGISTRY) if isinstance(r, DeviceState)]


def _sections(name: str, device: str) -> list[DeviceState]:
    found = [s for s in _states(name) if s.idstr.endswith("/" + device)]
    assert found, f"no {device} section in {name}"
    assert all(s.source == "typed" and s.fallback is None for s in found)
    return found


def _virtio(state: DeviceState) -> Record:
    value = state.record.fields["virtio"]
    assert isinstance(value, Record)
    return value


MORE = [
    "pc-7.2-virtio-input-modern.mig", "q35-7.2-virtio-input-modern.mig",
    "pc-7.2-virtio-gpu-modern.mig", "q35-7.2-virtio-gpu-modern.mig", "pc-7.2-virtio-vga.mig",
    "pc-7.2-virtio-iommu-modern.mig", "q35-7.2-virtio-iommu-modern.mig",
    "pc-7.2-virtio-mem-modern.mig", "q35-7.2-virtio-mem-modern.mig",
    "virt-7.2-virtio-pci-more.mig", "virt-7.2-virtio-mmio-input-gpu.mig",
    "virt-7.2-virtio-mmio-input-gpu-v2.mig", "pc-2.2-virtio-more.mig",
]


@pytest.mark.parametrize("name", MORE)
def test_the_new_fixtures_check_typed_and_byte_exact(name: str) -> None:
    with open_stream(CORPUS / name) as source, open_stream(CORPUS / name) as original:
        report = check_stream(source, original, descriptions=DEFAULT_REGISTRY)
    assert report.identical and report.unnamed == []
    virtio = [s for s in report.sections if s.idstr and s.idstr.rsplit("/", 1)[-1] in
              {"virtio-input", "virtio-gpu", "virtio-iommu", "virtio-mem"}]
    assert virtio
    assert all(s.source == "typed" and s.raw_bytes == 0 and s.opaque_bytes == 0 for s in virtio)


# ------------------------------------------------------------------ virtio-input


def test_keyboard_mouse_and_tablet_are_three_input_sections_of_two_queues() -> None:
    sections = _sections("pc-7.2-virtio-input-modern.mig", "virtio-input")
    assert [s.idstr for s in sections] == [f"0000:00:0{n}.0/virtio-input" for n in (2, 3, 4)]
    for state in sections:
        virtio = _virtio(state)
        assert state.version == 1 and "device" not in virtio.fields  # no part of its own
        assert virtio.fields["num_queues"] == 2
        assert [q.fields["num"] for q in virtio.fields["vq"]] == [64, 64]  # evt and sts


def test_input_devices_on_virtio_mmio() -> None:
    for name in ("virt-7.2-virtio-mmio-input-gpu.mig", "virt-7.2-virtio-mmio-input-gpu-v2.mig"):
        sections = _sections(name, "virtio-input")
        assert len(sections) == 2 and all(s.idstr.startswith("virtio-mmio@") for s in sections)
        assert all(_virtio(s).fields["num_queues"] == 2 for s in sections)


# ------------------------------------------------------------------ virtio-gpu


def test_gpu_section_has_the_virtio_field_and_its_own() -> None:
    (state,) = _sections("pc-7.2-virtio-gpu-modern.mig", "virtio-gpu")
    assert list(state.record.fields) == ["virtio", "virtio-gpu"]
    assert "device" not in _virtio(state).fields
    assert [q.fields["num"] for q in _virtio(state).fields["vq"]] == [64, 16]  # ctrl and cursor (2D)
    gpu = state.record.fields["virtio-gpu"].fields
    assert gpu["resources"] == []
    scanouts = gpu["scanouts"].fields
    assert (scanouts["enable"], scanouts["max_outputs"], len(scanouts["scanout"])) == (0, 1, 1)


def test_virtio_vga_has_two_scanouts_and_a_vga_section() -> None:
    states = _states("pc-7.2-virtio-vga.mig")
    (gpu,) = [s for s in states if s.idstr.endswith("/virtio-gpu")]
    scanouts = gpu.record.fields["virtio-gpu"].fields["scanouts"].fields
    assert scanouts["max_outputs"] == 2 and len(scanouts["scanout"]) == 2
    assert any(s.idstr.endswith("/virtio-vga") for s in states)


GPU_ONLY = Description(name="gpu field", version=1, minimum_version=1, fields=(GPU_FIELD,))


def _gpu_bytes(resources: list[tuple[int, int, int, int, list[tuple[int, int]]]], scanout_resource: int = 0) -> bytes:
    out = b""
    for resource_id, width, height, fmt, backing in resources:
        out += struct.pack(">5I", resource_id, width, height, fmt, len(backing))
        out += b"".join(struct.pack(">QI", addr, length) for addr, length in backing)
        out += bytes(range(width * 4 * height))
    out += bytes(4) + struct.pack(">iI", 1, 1) + struct.pack(">10I", scanout_resource, 2, 2, *[0] * 7)
    return out


def test_a_hand_built_gpu_resource_round_trips_byte_for_byte() -> None:
    data = _gpu_bytes([(7, 2, 2, 1, [(0x100000, 16)]), (9, 1, 3, 134, [(0x200000, 8), (0x300000, 4)])], 7)
    record = decode(GPU_ONLY, ByteReader(data), 1)
    gpu = record.fields["virtio-gpu"].fields
    assert [r.fields["resource_id"] for r in gpu["resources"]] == [7, 9]
    first, second = gpu["resources"]
    assert (first.fields["width"], first.fields["height"], first.fields["pixels"]) == (2, 2, bytes(range(16)))
    assert [(b.fields["addr"], b.fields["length"]) for b in second.fields["backing"]] == [(0x200000, 8), (0x300000, 4)]
    assert gpu["scanouts"].fields["scanout"][0].fields["resource_id"] == 7
    assert encode(GPU_ONLY, record) == data


@pytest.mark.parametrize(
    "data, error, where",
    [
        (struct.pack(">5I", 1, 2, 2, 99, 0), MalformedError, "format"),  # no pixman format for 99
        (struct.pack(">5I", 1, 1 << 16, 1 << 16, 1, 0), LimitExceededError, "pixels"),  # 16 GiB of pixels
        (_gpu_bytes([])[:-40], TruncatedError, "scanout"),
        (bytes(4) + struct.pack(">iI", 0, 17), MalformedError, "max_outputs"),  # VIRTIO_GPU_MAX_SCANOUTS = 16
    ],
)
def test_hostile_gpu_fields_are_typed_errors(data: bytes, error: type[DecodeError], where: str) -> None:
    with pytest.raises(error) as raised:
        decode(GPU_ONLY, ByteReader(data), 1)
    assert raised.value.offset is not None and where in str(raised.value)


def test_a_truncated_gpu_field_is_a_truncation_error_at_every_length() -> None:
    data = _gpu_bytes([(7, 2, 2, 1, [(0x100000, 16)])])
    for cut in range(len(data)):
        with pytest.raises(TruncatedError):
            decode(GPU_ONLY, ByteReader(data[:cut]), 1)


def test_gpu_resource_count_is_bounded_by_the_limit() -> None:
    one = struct.pack(">5I", 1, 0, 0, 1, 0)
    with pytest.raises(LimitExceededError, match="max_array_count"):
        decode(GPU_ONLY, ByteReader(one * 5 + _gpu_bytes([])), 1, limits=Limits(max_array_count=4))


# ------------------------------------------------------------------ virtio-iommu


def _iommu(name: str) -> VirtIOIOMMU:
    (state,) = _sections(name, "virtio-iommu")
    assert state.version == 2
    return from_record(VirtIOIOMMU, _virtio(state).fields["device"])


def test_iommu_of_a_paused_vm_has_no_domains_and_bypass_on() -> None:
    for name in ("pc-7.2-virtio-iommu-modern.mig", "q35-7.2-virtio-iommu-modern.mig", "virt-7.2-virtio-pci-more.mig"):
        iommu = _iommu(name)
        assert iommu.domains == [] and iommu.bypass == 1  # boot-bypass=on


IOMMU = description_of(VirtIOIOMMU)


def _domain_record(domain_id: int, mappings: list[tuple[int, int, int, int]], endpoints: list[int]) -> Record:
    nodes = [Record(version=1, fields={"key": Record(version=1, fields={"low": low, "high": high}),
                                       "value": Record(version=1, fields={"phys_addr": phys, "flags": flags})})
             for low, high, phys, flags in mappings]
    eps = [Record(version=1, fields={"id": e}) for e in endpoints]
    value = Record(version=2, fields={"id": domain_id, "mappings": nodes, "endpoint_list": eps, "bypass": False})
    return Record(version=1, fields={"key": domain_id, "value": value})


def test_an_iommu_domain_has_qemus_gtree_and_qlist_bytes() -> None:
    record = Record(version=2, fields={"domains": [_domain_record(3, [(0x1000, 0x1fff, 0x80000, 3)], [8])], "bypass": 0})
    data = encode(IOMMU, record)
    assert data == (
        struct.pack(">I", 1) + b"\x01" + struct.pack(">Q", 3)  # one domain, direct key 3
        + struct.pack(">I", 3)  # domain id
        + struct.pack(">I", 1) + b"\x01" + struct.pack(">QQ", 0x1000, 0x1FFF) + struct.pack(">QI", 0x80000, 3) + b"\x00"
        + b"\x01" + struct.pack(">I", 8) + b"\x00"  # endpoint 8
        + b"\x00"  # domain bypass
        + b"\x00"  # end of domains
        + b"\x00"  # config.bypass
    )
    assert decode(IOMMU, ByteReader(data), 2) == record


@pytest.mark.parametrize(
    "data, message",
    [
        (struct.pack(">I", 2) + b"\x00" + b"\x01", "0 nodes, the count says 2"),
        (struct.pack(">I", 0) + b"\x01", "more nodes than the count 0"),
        (struct.pack(">I", 0) + b"\x02", "list marker must be 0 or 1, got 2"),
    ],
)
def test_hostile_gtrees_are_malformed(data: bytes, message: str) -> None:
    with pytest.raises(MalformedError, match=message) as raised:
        decode(IOMMU, ByteReader(data), 2)
    assert raised.value.offset is not None and raised.value.path is not None and raised.value.path[0] == "domains"


def test_a_gtree_count_beyond_the_limit_is_refused_before_reading_nodes() -> None:
    with pytest.raises(LimitExceededError, match="max_array_count"):
        decode(IOMMU, ByteReader(struct.pack(">I", 0xFFFFFFFF)), 2, limits=Limits(max_array_count=1000))


def test_a_qlist_counts_its_elements_against_the_limit() -> None:
    qlist = Description(name="q", version=1, minimum_version=1,
                        fields=(Field(name="l", kind=Custom(codec=QList(element=description_of(IOMMUEndpoint)),
                                                            type_name="qlist")),))
    data = (b"\x01" + bytes(4)) * 3 + b"\x00"
    assert len(decode(qlist, ByteReader(data), 1).fields["l"]) == 3
    with pytest.raises(LimitExceededError):
        decode(qlist, ByteReader(data), 1, limits=Limits(max_array_count=2))


def test_gtree_encode_refuses_a_key_of_the_wrong_kind() -> None:
    from vmstate.errors import EncodeError

    tree = Description(name="t", version=1, minimum_version=1, fields=(
        Field(name="t", kind=Custom(codec=GTree(value=description_of(IOMMUMapping)), type_name="gtree")),))
    node = Record(version=1, fields={"key": "three", "value": Record(version=1, fields={"phys_addr": 0, "flags": 0})})
    with pytest.raises(EncodeError, match="direct key"):
        encode(tree, Record(version=1, fields={"t": [node]}))


# ------------------------------------------------------------------ virtio-mem


def _mem(name: str) -> VirtIOMEM:
    (state,) = _sections(name, "virtio-mem")
    return from_record(VirtIOMEM, _virtio(state).fields["device"])


@pytest.mark.parametrize("name", ["pc-7.2-virtio-mem-modern.mig", "q35-7.2-virtio-mem-modern.mig",
                                  "virt-7.2-virtio-pci-more.mig", "pc-2.2-virtio-more.mig"])
def test_virtio_mem_geometry_is_what_the_command_line_asked(name: str) -> None:
    mem = _mem(name)
    # -object memory-backend-ram,size=256M -device virtio-mem-pci,block-size=1M,requested-size=16M
    assert (mem.region_size, mem.block_size, mem.requested_size, mem.node) == (256 * MiB, MiB, 16 * MiB, 0)
    assert mem.usable_region_size == 256 * MiB and mem.size == 0  # the paused guest plugged nothing
    assert len(mem.bitmap) == 4 and mem.plugged_blocks() == 0  # 256 blocks in 64-bit words
    assert mem.addr >= 4 << 30 or name.startswith("virt")  # the device memory region above 4 GiB on x86


def test_a_mem_bitmap_that_cannot_be_sized_is_malformed() -> None:
    data = struct.pack(">QQQI", 1 << 32, 256 * MiB, 0, 0) + bytes(24)  # block_size 0
    with pytest.raises(MalformedError, match="block_size 0") as raised:
        decode(description_of(VirtIOMEM), ByteReader(data), 1)
    assert raised.value.path is not None and raised.value.path[-1] == "bitmap"


def test_a_huge_mem_bitmap_is_refused_by_the_limit() -> None:
    data = struct.pack(">QQQI", 1 << 32, 1 << 62, 1, 0) + bytes(24)  # 2**62 blocks
    with pytest.raises(LimitExceededError, match="max_buffer"):
        decode(description_of(VirtIOMEM), ByteReader(data), 1)


# ------------------------------------------------------------------ QEMU reads what we write


def _argv(fixture: str) -> list[str]:
    (found,) = [f for f in generate.corpus() if f.name == fixture]
    argv = found.argv()
    assert argv[-2:] == ["-monitor", "stdio"]
    return argv[:-2]


def _rewrite(source: Path, out: Path, device: str, change: Callable[[DeviceState], DeviceState]) -> None:
    with open_stream(source) as stream, open(out, "wb") as sink:
        writer = StreamWriter(sink)
        for record in StreamReader(stream, descriptions=DEFAULT_REGISTRY):
            if isinstance(record, DeviceState) and record.idstr.endswith("/" + device):
                record = change(record)
            writer.write(record)


def _with_fields(state: DeviceState, **fields: Any) -> DeviceState:
    return attrs.evolve(state, record=Record(version=state.record.version, fields={**state.record.fields, **fields}))


@pytest.mark.qemu
def test_qemu_loads_a_gpu_resource_we_wrote_and_saves_it_back(tmp_path: Path) -> None:
    from tests.support.qemu_driver import load_and_resave

    pixels = bytes(range(2 * 4 * 2))

    def add_resource(state: DeviceState) -> DeviceState:
        gpu = state.record.fields["virtio-gpu"]
        resource = Record(version=1, fields={
            "resource_id": 7, "width": 2, "height": 2, "format": 1, "iov_cnt": 1,
            "backing": [Record(version=1, fields={"addr": 0x100000, "length": 16})], "pixels": pixels})
        return _with_fields(state, **{"virtio-gpu": Record(version=1, fields={**gpu.fields, "resources": [resource]})})

    ours, resaved = tmp_path / "gpu.mig", tmp_path / "resaved.mig"
    _rewrite(CORPUS / "pc-7.2-virtio-gpu-modern.mig", ours, "virtio-gpu", add_resource)
    assert load_and_resave(_argv("pc-7.2-virtio-gpu-modern"), ours, tmp_path, resaved) == "completed"
    with open(resaved, "rb") as source:
        (gpu,) = [r for r in StreamReader(source, descriptions=DEFAULT_REGISTRY)
                  if isinstance(r, DeviceState) and r.idstr.endswith("/virtio-gpu")]
    assert gpu.source == "typed"
    (resource,) = gpu.record.fields["virtio-gpu"].fields["resources"]
    assert {k: v for k, v in resource.fields.items() if k != "backing"} == {
        "resource_id": 7, "width": 2, "height": 2, "format": 1, "iov_cnt": 1, "pixels": pixels}
    assert [(b.fields["addr"], b.fields["length"]) for b in resource.fields["backing"]] == [(0x100000, 16)]


@pytest.mark.qemu
def test_qemu_loads_an_iommu_domain_we_wrote_and_saves_it_back(tmp_path: Path) -> None:
    from tests.support.qemu_driver import load_and_resave

    def add_domain(state: DeviceState) -> DeviceState:
        virtio = _virtio(state)
        device = virtio.fields["device"]
        domains = [_domain_record(3, [(0x1000, 0x1FFF, 0x80000, 3), (0x4000, 0x4FFF, 0x90000, 1)], [])]
        device = Record(version=device.version, fields={**device.fields, "domains": domains})
        return _with_fields(state, virtio=attrs.evolve(virtio, fields={**virtio.fields, "device": device}))

    ours, resaved = tmp_path / "iommu.mig", tmp_path / "resaved.mig"
    _rewrite(CORPUS / "q35-7.2-virtio-iommu-modern.mig", ours, "virtio-iommu", add_domain)
    assert load_and_resave(_argv("q35-7.2-virtio-iommu-modern"), ours, tmp_path, resaved) == "completed"
    with open(resaved, "rb") as source:
        (state,) = [r for r in StreamReader(source, descriptions=DEFAULT_REGISTRY)
                    if isinstance(r, DeviceState) and r.idstr.endswith("/virtio-iommu")]
    iommu = from_record(VirtIOIOMMU, _virtio(state).fields["device"])
    (domain,) = iommu.domains
    assert domain.fields["key"] == 3 and domain.fields["value"].fields["id"] == 3
    mappings = domain.fields["value"].fields["mappings"]
    assert [(m.fields["key"].fields["low"], m.fields["value"].fields["phys_addr"]) for m in mappings] == [
        (0x1000, 0x80000), (0x4000, 0x90000)]  # g_tree_foreach: in key order
