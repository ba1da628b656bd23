"""Real QEMU 7.2 and 10.0 load what ``vmstate edit`` wrote, and report the edited values over QMP.

A paused VM of each QEMU is migrated into a file, ``vmstate edit`` (the
installed command) changes it, the same QEMU loads it with ``-incoming
defer``; only once ``query-migrate`` says ``completed`` are the values asked
for: the MAC in ``query-rx-filter``, the balloon in ``query-balloon``, the
device endianness in ``x-query-virtio-status``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from compat_fixtures.generate import run_vm
from compat_fixtures.qemu_versions import QemuMissing, qemu
from tests.support.cli import run_script
from tests.support.qemu_driver import load_and_query

pytestmark = [pytest.mark.qemu, pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")]

VERSIONS = ["7.2", "10.0"]
RAM_MIB = 128
PC = ["-M", "pc", "-S", "-nodefaults", "-nographic", "-m", str(RAM_MIB),
      "-device", "virtio-net-pci,id=net0,mac=52:54:00:12:34:56", "-device", "virtio-balloon-pci,id=balloon0"]
NET, BALLOON = "0000:00:02.0/virtio-net", "0000:00:03.0/virtio-balloon"
PSERIES = ["-M", "pseries", "-S", "-nodefaults", "-nographic", "-m", "256",
           "-global", "spapr-pci-host-bridge.dma_win_size=0x1000000",
           "-device", "virtio-rng-pci,disable-modern=on,id=rng0"]
RNG = "pci@800000020000000:00.0/virtio-rng"


def _argv(version: str, binary: str, args: list[str]) -> list[str]:
    try:
        return [*qemu(version).command(binary), *args]
    except QemuMissing as exc:
        pytest.fail(str(exc))


def _paused(version: str, binary: str, args: list[str], target: Path) -> Path:
    run_vm([*_argv(version, binary, args), "-monitor", "stdio"], target)
    return target


def _edit(source: Path, out: Path, *sets: str) -> None:
    result = run_script("vmstate", "edit", source, out, *(a for s in sets for a in ("--set", s)))
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("version", VERSIONS)
def test_a_mac_and_a_balloon_set_by_vmstate_edit_show_in_qemu(version: str, tmp_path: Path) -> None:
    source = _paused(version, "qemu-system-x86_64", PC, tmp_path / "pc.mig")
    edited = tmp_path / "edited.mig"
    _edit(source, edited, f"{NET}:virtio.device.mac=52:54:00:ab:cd:ef",
          f"{BALLOON}:virtio.device.actual=1024", f"{BALLOON}:virtio.device.num_pages=2048")
    resaved = tmp_path / "resaved.mig"
    status, (filters, balloon) = load_and_query(
        _argv(version, "qemu-system-x86_64", PC), edited, tmp_path,
        [{"execute": "query-rx-filter", "arguments": {"name": "net0"}}, {"execute": "query-balloon"}],
        resave=resaved)
    assert status == "completed"
    assert filters[0]["main-mac"] == "52:54:00:ab:cd:ef"
    # QEMU reports the guest's memory less what the balloon holds: 1024 pages of 4 KiB
    assert balloon["actual"] == (RAM_MIB << 20) - (1024 << 12)
    # the target (num_pages) QMP does not show: QEMU writes it out again as it loaded it
    result = run_script("vmstate", "edit", resaved, "--get", f"{BALLOON}:virtio.device.num_pages",
                        "--get", f"{NET}:virtio.device.mac")
    assert result.stdout.splitlines() == [f"{BALLOON}:virtio.device.num_pages = 2048",
                                          f"{NET}:virtio.device.mac = 52:54:00:ab:cd:ef"], result.stderr


@pytest.mark.parametrize("version", VERSIONS)
def test_a_device_endian_flip_on_pseries_shows_in_qemu(version: str, tmp_path: Path) -> None:
    source = _paused(version, "qemu-system-ppc64", PSERIES, tmp_path / "pseries.mig")
    query = {"execute": "x-query-virtio-status", "arguments": {"path": "/machine/peripheral/rng0/virtio-backend"}}
    argv = _argv(version, "qemu-system-ppc64", PSERIES)
    status, (before,) = load_and_query(argv, source, tmp_path, [query])
    assert status == "completed" and before["device-endian"] == "big"
    edited = tmp_path / "little.mig"
    _edit(source, edited, f"{RNG}:virtio.device_endian=little")
    status, (after,) = load_and_query(argv, edited, tmp_path, [query])
    assert status == "completed" and after["device-endian"] == "little"


def _through_json(source: Path, out: Path, jq_filter: str, tmp_path: Path) -> None:
    """``vmstate export``, a jq program, ``vmstate import``: the plain JSON route to the same edits."""
    import shutil
    import subprocess

    if shutil.which("jq") is None:
        pytest.fail("jq is not installed (.ci/run installs it)")
    state, edited = tmp_path / "state.json", tmp_path / "edited.json"
    assert run_script("vmstate", "export", source, state).returncode == 0
    edited.write_bytes(subprocess.run(["jq", jq_filter, str(state)], check=True, capture_output=True).stdout)
    result = run_script("vmstate", "import", edited, out)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("version", VERSIONS)
def test_the_same_edits_through_the_json_form_show_in_qemu(version: str, tmp_path: Path) -> None:
    pc = _paused(version, "qemu-system-x86_64", PC, tmp_path / "pc.mig")
    edited = tmp_path / "pc-edited.mig"
    _through_json(pc, edited, f'.sections["{NET}"].virtio.device.mac = "52:54:00:ab:cd:ef"'
                              f' | .sections["{BALLOON}"].virtio.device.actual = 1024', tmp_path)
    status, (filters, balloon) = load_and_query(
        _argv(version, "qemu-system-x86_64", PC), edited, tmp_path,
        [{"execute": "query-rx-filter", "arguments": {"name": "net0"}}, {"execute": "query-balloon"}])
    assert status == "completed"
    assert filters[0]["main-mac"] == "52:54:00:ab:cd:ef" and balloon["actual"] == (RAM_MIB << 20) - (1024 << 12)

    pseries = _paused(version, "qemu-system-ppc64", PSERIES, tmp_path / "pseries.mig")
    little = tmp_path / "little.mig"
    _through_json(pseries, little, f'.sections["{RNG}"].virtio["virtio/device_endian"] = {{"device_endian": "little"}}',
                  tmp_path)
    query = {"execute": "x-query-virtio-status", "arguments": {"path": "/machine/peripheral/rng0/virtio-backend"}}
    status, (after,) = load_and_query(_argv(version, "qemu-system-ppc64", PSERIES), little, tmp_path, [query])
    assert status == "completed" and after["device-endian"] == "little"


@pytest.mark.parametrize("version", VERSIONS)
def test_what_vmstate_edit_refuses_qemu_refuses_too(version: str, tmp_path: Path) -> None:
    """The load checks after an edit are QEMU's: forced past them, the stream does not load."""
    source = _paused(version, "qemu-system-x86_64", PC, tmp_path / "pc.mig")
    argv = _argv(version, "qemu-system-x86_64", PC)
    for number, edit in enumerate((f"{NET}:virtio.vq[0].last_avail_idx=5", f"{NET}:virtio.transport.config_vector=9")):
        out = tmp_path / f"refused-{number}.mig"
        refused = run_script("vmstate", "edit", source, out, "--set", edit)
        assert refused.returncode == 2 and not out.exists(), refused.stderr
        assert run_script("vmstate", "edit", source, out, "--set", edit, "--force").returncode == 0
        status, _answers = load_and_query(argv, out, tmp_path, [])
        assert status == "failed", edit


def test_qemu_refuses_a_ports_map_vmstate_edit_refuses(tmp_path: Path) -> None:
    """virtio_serial_load_device compares the map with its own ports (QEMU 7.2, the corpus's serial stream)."""
    import json

    from tests.support.paths import CORPUS, ROOT

    name = "pc-7.2-virtio-serial-legacy"
    entry = next(e for e in json.loads((ROOT / "compat_fixtures" / "manifest.json").read_text())["streams"]
                 if e["name"] == name)
    argv = list(entry["argv"])[:-2]  # less the generator's monitor
    out = tmp_path / "ports.mig"
    edit = "0000:00:02.0/virtio-console:virtio.device.ports_map=[1]"
    assert run_script("vmstate", "edit", CORPUS / f"{name}.mig", out, "--set", edit).returncode == 2
    assert run_script("vmstate", "edit", CORPUS / f"{name}.mig", out, "--set", edit, "--force").returncode == 0
    assert load_and_query(argv, CORPUS / f"{name}.mig", tmp_path, [])[0] == "completed"
    assert load_and_query(argv, out, tmp_path, [])[0] == "failed"


@pytest.mark.parametrize("version", VERSIONS)
def test_a_read_only_capability_byte_is_refused_as_qemu_refuses_it(version: str, tmp_path: Path) -> None:
    """A virtio capability's padding is read-only, MSI-X's mask-all bit writable: vmstate edit and QEMU agree."""
    from compat_fixtures.preflight_cases import Destination, measure

    source = _paused(version, "qemu-system-x86_64", PC, tmp_path / "pc.mig")
    got = run_script("vmstate", "edit", source, "--get", f"{NET}:virtio.transport.pci.config")
    config = bytearray.fromhex(got.stdout.split(" = ")[1])
    msix = next(at for at in _capabilities(config) if config[at] == 0x11)
    virtio = next(at for at in _capabilities(config) if config[at] == 0x09)
    destination = Destination("pc", version, "pc", tuple(a for a in PC[2:] if a not in ("-S", "-nographic")))
    for at, flip, loads in ((virtio + 5, 0x01, False), (msix + 3, 0x40, True)):
        edited = bytearray(config)
        edited[at] ^= flip
        out = tmp_path / f"config-{at:x}.mig"
        setting = f"{NET}:virtio.transport.pci.config={edited.hex()}"
        checked = run_script("vmstate", "edit", source, out, "--set", setting)
        assert (checked.returncode == 0) == loads, checked.stderr
        if not loads:
            assert run_script("vmstate", "edit", source, out, "--set", setting, "--force").returncode == 0
        outcome = measure(destination, out, tmp_path)
        assert outcome["status"] == ("completed" if loads else "failed"), outcome
        if not loads:
            assert outcome["qemu_lines"][0] in checked.stderr  # QEMU's own line, masks and all


def _capabilities(config: bytes) -> list[int]:
    found, at = [], config[0x34]
    while at and at not in found:
        found.append(at)
        at = config[at + 1]
    return found
