"""Interop with real QEMU 7.2: fresh streams of other device mixes, and QEMU loading what we write."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from compat_fixtures.generate import run_vm
from devices import DEFAULT_REGISTRY
from devices.machine import Timer
from streams.qemu import DeviceState, StreamReader, StreamWriter, VmDescription, check_stream
from tests.support.qemu_driver import load_and_resave
from vmstate import to_record

pytestmark = [
    pytest.mark.qemu,
    # qemu.qmp's client closes itself again when collected after QEMU exited.
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

QEMU = "qemu-system-x86_64"
# A device mix that is not in the committed corpus.
MIX = [
    "-M", "q35", "-S", "-nodefaults", "-nographic", "-m", "16",
    "-device", "virtio-net-pci,disable-legacy=on",
    "-device", "virtio-rng-pci,disable-modern=on",
    "-device", "virtio-balloon-pci",
    "-device", "e1000",
]


@pytest.fixture(scope="module")
def fresh_stream(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which(QEMU) is None:
        pytest.fail(f"{QEMU} is not installed (.ci/run installs Debian's qemu-system-x86)")
    target = tmp_path_factory.mktemp("qemu") / "mix.mig"
    run_vm([QEMU, *MIX, "-monitor", "stdio"], target)
    return target


def load_into_qemu(stream: Path, tmp_path: Path) -> str:
    """Start QEMU with the same devices, load ``stream`` incoming over QMP, return the final status."""
    return load_and_resave([QEMU, *MIX], stream, tmp_path)


def test_fresh_stream_of_another_device_mix_reencodes_identically(fresh_stream: Path) -> None:
    with open(fresh_stream, "rb") as source, open(fresh_stream, "rb") as original:
        report = check_stream(source, original, descriptions=DEFAULT_REGISTRY)
    assert report.identical and report.size == fresh_stream.stat().st_size
    assert any("e1000" in s.idstr for s in report.sections)


def test_qemu_loads_the_stream_we_write(fresh_stream: Path, tmp_path: Path) -> None:
    # Rewrite the timer section from a typed object and drop the vmdesc trailer
    # (as old machine types do): QEMU must accept what our writer produced.
    out = tmp_path / "ours.mig"
    with open(fresh_stream, "rb") as source, open(out, "wb") as sink:
        writer = StreamWriter(sink)
        for record in StreamReader(source, descriptions=DEFAULT_REGISTRY):
            if isinstance(record, VmDescription):
                continue
            if isinstance(record, DeviceState) and record.idstr == "timer":
                timer = record.state
                assert isinstance(timer, Timer)
                record = DeviceState(record.idstr, record.instance_id, record.version, record.description, to_record(timer), "typed", record.size)
            writer.write(record)
    assert out.stat().st_size < fresh_stream.stat().st_size
    assert load_into_qemu(out, tmp_path) == "completed"


def test_qemu_rejects_a_stream_we_corrupted(fresh_stream: Path, tmp_path: Path) -> None:
    # The same check fails for a broken stream, so the test above can fail.
    data = bytearray(fresh_stream.read_bytes())
    marker = data.index(b"\x05timer") + 6 + 4  # length byte, idstr, instance id: then the version
    data[marker : marker + 4] = b"\x00\x00\x00\x09"  # timer version 9: too new for QEMU
    bad = tmp_path / "bad.mig"
    bad.write_bytes(bytes(data))
    assert load_into_qemu(bad, tmp_path) == "failed"
