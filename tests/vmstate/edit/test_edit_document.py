"""``vmstate export`` / ``vmstate import``: one plain JSON document, every key checked on the way back."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any, Callable

import pytest

from devices import DEFAULT_REGISTRY
from tests.support.cli import run_script
from tests.support.paths import CORPUS
from vmstate.edit.document import ITEMS, ZEROS, export_file, import_file
from vmstate.errors import EditError, LimitExceededError

PSERIES = CORPUS / "pseries-7.2-virtio-all-legacy.mig"
NET = "pci@800000020000000:00.0/virtio-net"
CONSOLE = "pci@800000020000000:02.0/virtio-console"


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("doc") / "state.json"
    export_file(PSERIES, path, descriptions=DEFAULT_REGISTRY)
    return path


def _edited(exported: Path, tmp_path: Path, change: Callable[[dict[str, Any]], None]) -> Path:
    document = json.loads(exported.read_text())
    change(document["sections"])
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(document))
    return path


@pytest.mark.parametrize("name", ["pseries-7.2-virtio-all-legacy.mig", "q35-10.0-virtio-all-modern.mig.xz",
                                  "q35-7.2-virtio-multiqueue.mig", "virt-7.2-virtio-mmio-all.mig",
                                  "pc-2.2-virtio-all.mig", "pc-7.2-booted-virtio-legacy.mig.xz"])
def test_an_unchanged_document_imports_to_the_same_bytes(name: str, tmp_path: Path) -> None:
    from tests.support.streams import stream_bytes

    source = CORPUS / name
    state, out = tmp_path / "state.json", tmp_path / "out.mig"
    export_file(source, state, descriptions=DEFAULT_REGISTRY)
    assert import_file(state, out, descriptions=DEFAULT_REGISTRY) == 0
    assert out.read_bytes() == stream_bytes(source)


def test_the_document_is_plain_readable_and_folded(exported: Path) -> None:
    document = json.loads(exported.read_text())
    net = document["sections"][NET]["virtio"]
    assert net["device"]["mac"] == "52:54:00:12:34:56"
    assert document["sections"]["globalstate"]["runstate"] == "prelaunch"
    irq = net["transport"]["pci"]["irq_state"]
    assert irq == {ITEMS: [], ZEROS: 4}
    # integers jq would round (past 2**53) are hex strings; every other one a number
    timers = [v for v in document["sections"]["spapr"].values() if isinstance(v, str) and v.startswith("0x")]
    assert all(int(t, 16) >= 1 << 53 for t in timers)
    assert max(len(json.dumps(s)) for s in document["sections"].values()) < 400_000


def test_jq_reads_it_and_an_edit_through_jq_imports(exported: Path, tmp_path: Path) -> None:
    edited, out = tmp_path / "jq.json", tmp_path / "out.mig"
    result = subprocess.run(["jq", f'.sections["{NET}"].virtio.device.mac = "02:00:00:00:00:01"', str(exported)],
                            capture_output=True, check=True)
    edited.write_bytes(result.stdout)
    assert import_file(edited, out, descriptions=DEFAULT_REGISTRY) == 1
    got = run_script("vmstate", "edit", out, "--get", f"{NET}:virtio.device.mac")
    assert got.stdout.strip().endswith("= 02:00:00:00:00:01")


def test_a_device_endian_subsection_added_in_the_document_flips_the_device(exported: Path, tmp_path: Path) -> None:
    def flip(sections: dict[str, Any]) -> None:
        sections[CONSOLE]["virtio"]["virtio/device_endian"] = {"device_endian": "little"}

    out = tmp_path / "le.mig"
    import_file(_edited(exported, tmp_path, flip), out, descriptions=DEFAULT_REGISTRY)
    got = run_script("vmstate", "edit", out, "--get", f"{CONSOLE}:virtio.device_endian",
                     "--get", f"{CONSOLE}:virtio.device.config_max_nr_ports")
    assert [line.split(" = ")[1] for line in got.stdout.splitlines()] == ["little (1)", "31"]


def _delete(path: list[str]) -> Callable[[dict[str, Any]], None]:
    def change(sections: dict[str, Any]) -> None:
        node = sections
        for step in path[:-1]:
            node = node[step]
        del node[path[-1]]
    return change


def _put(path: list[str], value: Any) -> Callable[[dict[str, Any]], None]:
    def change(sections: dict[str, Any]) -> None:
        node = sections
        for step in path[:-1]:
            node = node[step]
        node[path[-1]] = value
    return change


@pytest.mark.parametrize("change, message", [
    (_put(["nosuch"], {}), "unknown section 'nosuch'"),
    (_put([NET, "virtio", "device", "macc"], 1), "virtio.device: unknown key 'macc'"),
    (_delete([NET, "virtio", "device", "mac"]), "virtio.device: missing key 'mac'"),
    (_delete(["timer"]), "missing section 'timer'"),
    (_put(["timer", "cpu_ticks_offset"], "x"), "timer:cpu_ticks_offset: 'x' is not an integer"),
    (_put([NET, "virtio", "vq"], []), "virtio.vq: 0 items, the list has 3"),
    (_put([NET, "virtio", "transport", "pci", "irq_state"], {ITEMS: [], ZEROS: 3}), "0 items and 3 zero ones"),
    (_put([NET, "virtio", "status"], 256), "256 does not fit uint8"),
    (_put([NET, "virtio", "device"], [1]), "expected an object of fields"),
    (_put([CONSOLE, "virtio", "virtio/device_endian"], {"x": 1}), "holds one key, 'device_endian'"),
])
def test_a_bad_document_is_one_error_naming_its_path_and_nothing_is_written(
        exported: Path, tmp_path: Path, change: Callable[[dict[str, Any]], None], message: str) -> None:
    out = tmp_path / "out.mig"
    result = run_script("vmstate", "import", _edited(exported, tmp_path, change), out)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1 and not out.exists()


def test_hostile_documents(tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000)
    with pytest.raises(LimitExceededError, match="nests 100000 deep"):
        import_file(deep, tmp_path / "out.mig")
    other = tmp_path / "other.json"
    other.write_text('{"format": "something else"}')
    with pytest.raises(EditError, match="not a device state document"):
        import_file(other, tmp_path / "out.mig")
    assert not (tmp_path / "out.mig").exists()

