"""Real QEMU 7.2 loads the streams that snapshots turn back into (through QMP, ``-incoming``)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import attrs
import pytest

from compat_fixtures.generate import run_vm
from devices import DEFAULT_REGISTRY
from streams.qemu import SectionHeader
from streams.snapshots import (
    read_records,
    save_snapshot,
    snapshot_to_stream,
    stream_to_snapshot,
)
from tests.support.qemu_driver import load_and_resave

pytestmark = [pytest.mark.qemu, pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")]

PC = [
    "qemu-system-x86_64", "-M", "pc", "-S", "-nodefaults", "-nographic", "-m", "16",
    "-device", "virtio-net-pci,disable-modern=on",
    "-device", "virtio-rng-pci",
    "-device", "virtio-balloon-pci,disable-legacy=on",
]


@pytest.fixture(scope="module")
def fresh_stream(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which(PC[0]) is None:
        pytest.fail(f"{PC[0]} is not installed (.ci/run installs Debian's qemu-system-x86)")
    target = tmp_path_factory.mktemp("qemu") / "pc.mig"
    run_vm([*PC, "-monitor", "stdio"], target)
    return target


@pytest.mark.parametrize("codec", ["msgpack", "cbor"])
def test_qemu_loads_a_stream_made_from_a_snapshot(fresh_stream: Path, tmp_path: Path, codec: str) -> None:
    snapshot, back = tmp_path / f"vm.{codec}", tmp_path / "back.mig"
    stream_to_snapshot(fresh_stream, snapshot, codec, descriptions=DEFAULT_REGISTRY)
    snapshot_to_stream(snapshot, back, descriptions=DEFAULT_REGISTRY)
    assert back.read_bytes() == fresh_stream.read_bytes()
    assert load_and_resave(PC, back, tmp_path) == "completed"


def test_qemu_loads_what_vmstate_convert_made_from_a_json_snapshot(fresh_stream: Path, tmp_path: Path) -> None:
    exe = shutil.which("vmstate")
    assert exe is not None, "install the project (pip install -e .)"
    snapshot, back = tmp_path / "vm.json", tmp_path / "back.mig"
    for source, target in ((fresh_stream, snapshot), (snapshot, back)):
        result = subprocess.run([exe, "convert", str(source), str(target)], capture_output=True, text=True, timeout=120, check=False)
        assert result.returncode == 0, result.stderr
    assert load_and_resave(PC, back, tmp_path) == "completed"


def test_qemu_rejects_the_stream_of_a_snapshot_we_damaged(fresh_stream: Path, tmp_path: Path) -> None:
    # The same check fails for a bad stream, so the tests above can fail: the
    # snapshot says the timer section is version 9, which QEMU 7.2 does not load.
    good, bad, stream = tmp_path / "good.msgpack", tmp_path / "bad.msgpack", tmp_path / "bad.mig"
    stream_to_snapshot(fresh_stream, good, descriptions=DEFAULT_REGISTRY)

    def too_new(records):  # type: ignore[no-untyped-def]
        for record in records:
            if isinstance(record, SectionHeader) and record.idstr == "timer":
                record = attrs.evolve(record, version=9)
            yield record

    with open(good, "rb") as file:
        save_snapshot(bad, too_new(read_records(file, descriptions=DEFAULT_REGISTRY)))
    snapshot_to_stream(bad, stream, descriptions=DEFAULT_REGISTRY)
    assert stream.read_bytes() != fresh_stream.read_bytes()
    assert load_and_resave(PC, stream, tmp_path) == "failed"
