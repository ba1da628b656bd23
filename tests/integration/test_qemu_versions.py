"""The two QEMUs: 7.2 (the system's) and 10.0 (unpacked beside it by compat_fixtures.qemu_versions).

A missing QEMU is a failure here, never a skip: ``.ci/run`` installs both.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from compat_fixtures.generate import run_vm
from compat_fixtures.qemu_versions import Qemu, QemuMissing, archive_uri, qemu
from devices import DEFAULT_REGISTRY
from streams.qemu import CheckReport, check_stream
from vmstate.lookup import TYPED_SOURCE
from tests.support.qemu_driver import load_and_resave

pytestmark = [
    pytest.mark.qemu,
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

PAUSED = ["-S", "-nodefaults", "-nographic", "-m", "16",
          "-device", "virtio-net-pci", "-device", "virtio-balloon-pci", "-device", "virtio-rng-pci"]
# virtio-gpu-pci lives in a module (hw-display-virtio-gpu-pci.so): 7.2's module directory would abort 10.0.
WITH_MODULE = [*PAUSED, "-device", "virtio-gpu-pci"]


def checked(stream: Path) -> CheckReport:
    with open(stream, "rb") as source, open(stream, "rb") as original:
        return check_stream(source, original, descriptions=DEFAULT_REGISTRY)


def installed(version: str) -> Qemu:
    try:
        return qemu(version)
    except QemuMissing as exc:
        pytest.fail(str(exc))


@pytest.mark.parametrize(("version", "binary"), [
    (v, b) for v in ("7.2", "10.0")
    for b in ("qemu-system-x86_64", "qemu-system-ppc64", "qemu-system-aarch64", "qemu-img")])
def test_each_version_runs_each_binary(version: str, binary: str) -> None:
    line = installed(version).version_line(binary)
    assert f"version {version}." in line


def test_unknown_version_names_the_known_ones() -> None:
    with pytest.raises(QemuMissing, match=r"known: 7\.2, 10\.0"):
        qemu("9.9")


def test_a_missing_private_install_says_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(QemuMissing, match=r"qemu_versions install 10\.0"):
        qemu("10.0", cache=tmp_path)


def test_archive_uri_reads_deb822_and_one_line_sources(tmp_path: Path) -> None:
    deb822 = tmp_path / "debian.sources"
    deb822.write_text("Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n\n"
                      "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n",
                      encoding="utf-8")
    assert archive_uri((deb822,)) == "http://mirror.example/debian"
    one_line = tmp_path / "sources.list"
    one_line.write_text("deb [signed-by=/k.gpg] http://other.example/debian bookworm main\n", encoding="utf-8")
    assert archive_uri((tmp_path / "absent.sources", one_line)) == "http://other.example/debian"
    with pytest.raises(QemuMissing, match="no apt source"):
        archive_uri((tmp_path / "absent.sources",))


def test_ten_dumps_its_vmstate_with_its_own_modules(tmp_path: Path) -> None:
    """-dump-vmstate loads every module: with 7.2's module directory it would abort."""
    target = tmp_path / "pc.json"
    ten = installed("10.0")
    subprocess.run([*ten.command("qemu-system-x86_64"), "-M", "pc", "-nodefaults", "-dump-vmstate", str(target)],
                   check=True, capture_output=True, timeout=120)
    text = target.read_text(encoding="utf-8")
    assert '"virtio-gpu"' in text  # a device that lives in a module (hw-display-virtio-gpu.so)


@pytest.mark.parametrize("machine", ["pc-i440fx-10.0", "pc-q35-10.0", "pc-i440fx-7.2"])
def test_a_ten_stream_reencodes_identically_with_every_virtio_section_typed(machine: str, tmp_path: Path) -> None:
    stream = tmp_path / f"{machine}.mig"
    run_vm([*installed("10.0").command("qemu-system-x86_64"), "-M", machine, *PAUSED, "-monitor", "stdio"], stream)
    report = checked(stream)
    assert report.identical and report.size == stream.stat().st_size
    virtio = {s.idstr.rsplit("/", 1)[-1] for s in report.sections if "/virtio-" in s.idstr}
    assert virtio == {"virtio-net", "virtio-balloon", "virtio-rng"}, [s.idstr for s in report.sections]
    assert all(s.source == TYPED_SOURCE for s in report.sections if "/virtio-" in s.idstr)
    assert report.raw_bytes == 0 and report.opaque_bytes == 0 and not report.unnamed


def test_a_seven_two_stream_loads_on_ten_and_back(tmp_path: Path) -> None:
    """The 7.2 machine type migrates 7.2 -> 10.0 -> 7.2 (QEMU says completed both times)."""
    args = ["-M", "pc-i440fx-7.2", *WITH_MODULE]
    seven, ten = installed("7.2"), installed("10.0")
    first = tmp_path / "from-7.2.mig"
    run_vm([*seven.command("qemu-system-x86_64"), *args, "-monitor", "stdio"], first)
    through_ten = tmp_path / "through-10.0.mig"
    assert load_and_resave([*ten.command("qemu-system-x86_64"), *args], first, tmp_path, through_ten) == "completed"
    assert checked(through_ten).identical
    assert load_and_resave([*seven.command("qemu-system-x86_64"), *args], through_ten, tmp_path) == "completed"
