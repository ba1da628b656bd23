"""vmstate.edit.virtio: the one path from a stream's virtio sections to ``VirtIODevice`` and back."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from devices import DEFAULT_REGISTRY
from devices.cpu import PPC64, X86_64, Endian
from devices.virtio.device import VirtIODevice, virtio_section_of
from devices.virtio.net import VirtIONet
from streams.files import open_stream
from streams.qemu import DeviceState, StreamReader, StreamWriter
from tests.support.paths import CORPUS
from tests.support.streams import stream_bytes, unnamed_virtio_net
from vmstate.edit import VirtioEditor, edit_virtio_records, virtio_devices
from vmstate.errors import UnnamedSectionError

#: legacy and modern PCI, a device with a field after ``virtio`` (gpu), MMIO, a 2.2 stream without configuration
REAL = [
    "pc-7.2-virtio-net-legacy.mig",
    "q35-7.2-virtio-gpu-modern.mig",
    "virt-7.2-virtio-mmio-all.mig",
    "pseries-2.2-virtio-all.mig",
]


def _written(path: Path, editor: VirtioEditor) -> bytes:
    out = io.BytesIO()
    writer = StreamWriter(out)
    with open_stream(path) as source:
        for record in StreamReader(source, descriptions=DEFAULT_REGISTRY):
            writer.write(editor(record))
    return out.getvalue()


@pytest.mark.parametrize("name", REAL)
def test_unchanged_devices_write_every_byte_back(name: str) -> None:
    editor = VirtioEditor()
    assert _written(CORPUS / name, editor) == stream_bytes(CORPUS / name)
    with open_stream(CORPUS / name) as source:
        assert editor.count == len(list(virtio_devices(source))) > 0


def test_the_records_function_yields_each_record_with_edited_devices() -> None:
    path = CORPUS / "pc-7.2-virtio-all-legacy.mig"
    seen: list[str] = []

    def link_down(idstr: str, device: VirtIODevice) -> None:
        seen.append(idstr)
        if device.savevm_name == "virtio-net":
            device.device.fields["status"] = 0  # type: ignore[union-attr]

    with open_stream(path) as source:
        records = list(edit_virtio_records(StreamReader(source, descriptions=DEFAULT_REGISTRY), link_down))
    with open_stream(path) as source:
        assert len(records) == len(list(StreamReader(source, descriptions=DEFAULT_REGISTRY)))
    nets = [r for r in records if isinstance(r, DeviceState) and r.idstr.endswith("/virtio-net")]
    assert len(nets) == 1 and nets[0].record.fields["virtio"].fields["device"].fields["status"] == 0
    assert len(seen) >= 5 and all(idstr.rsplit("/", 1)[-1].startswith("virtio") for idstr in seen)


def test_the_target_comes_from_the_machine_else_from_the_sections_else_the_caller() -> None:
    for name in ("pseries-7.2-virtio-all-legacy.mig", "pseries-2.2-virtio-all.mig"):  # configuration / none (2.2)
        with open_stream(CORPUS / name) as source:
            devices = [device for _idstr, device in virtio_devices(source)]
        assert devices and {d.target for d in devices} == {PPC64} and {d.device_endian for d in devices} == {Endian.BIG}
    with open_stream(CORPUS / "pseries-2.2-virtio-all.mig") as source:
        given = [device for _idstr, device in virtio_devices(source, target=X86_64)]
    assert {d.target for d in given} == {X86_64} and {d.device_endian for d in given} == {Endian.LITTLE}


def test_only_the_named_sections_are_rewritten() -> None:
    def broken(_idstr: str, device: VirtIODevice) -> None:
        device.broken = True

    path = CORPUS / "pc-7.2-virtio-all-legacy.mig"
    editor = VirtioEditor(broken, names={"virtio-rng"})
    data = _written(path, editor)
    assert editor.count == 1
    with open_stream(path) as source:
        before = dict(virtio_devices(source))
    after = dict(virtio_devices(io.BytesIO(data)))
    assert [d.broken for d in after.values()] == [d.savevm_name == "virtio-rng" for d in after.values()]
    assert len(after) == len(before) >= 5
    for idstr, device in after.items():
        if device.savevm_name != "virtio-rng":
            assert device.record == before[idstr].record



def test_an_undecoded_virtio_section_is_refused_or_passed_through(tmp_path: Path) -> None:
    path = unnamed_virtio_net(tmp_path)
    with pytest.raises(UnnamedSectionError) as caught:
        _written(path, VirtioEditor())
    assert caught.value.section == "0000:00:02.0/virtio-net"
    lenient = VirtioEditor(strict=False)
    assert _written(path, lenient) == path.read_bytes() and lenient.count == 0


def test_a_decoded_section_reaches_its_typed_device() -> None:
    with open_stream(CORPUS / "pc-7.2-virtio-all-legacy.mig") as source:
        states = [r for r in StreamReader(source, descriptions=DEFAULT_REGISTRY) if isinstance(r, DeviceState)]
    sections = {s.idstr: virtio_section_of(s) for s in states}
    virtio = {idstr: section for idstr, section in sections.items() if section is not None}
    assert virtio and all(idstr.rsplit("/", 1)[-1] == s.savevm_name for idstr, s in virtio.items())
    assert all(sections[idstr] is None for idstr in sections if "virtio" not in idstr)
    devices = {idstr: s.device(X86_64) for idstr, s in virtio.items()}
    part_classes = {d.savevm_name: d.part_class for d in devices.values()}
    assert part_classes["virtio-net"] is VirtIONet and part_classes["virtio-rng"] is None
    with open_stream(CORPUS / "pc-7.2-virtio-all-legacy.mig") as source:
        assert {idstr: d.to_record() for idstr, d in virtio_devices(source)} == {
            idstr: d.to_record() for idstr, d in devices.items()
        }
