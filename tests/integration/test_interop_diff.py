"""migration-diff on real QEMU streams: the same VM at two times, and two VMs whose RAM differs."""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType

import pytest

from tests.support.qemu_driver import qmp_tools
from vmstate.diff import diff_files

pytestmark = pytest.mark.qemu  # QEMU is always installed where the tests run (.ci/run installs it)


def _examples() -> ModuleType:
    return qmp_tools()  # compat_fixtures/examples/generate.py


def test_the_same_vm_at_two_times_differs_exactly_in_what_was_changed(tmp_path: Path) -> None:
    """Migrate a VM, load it elsewhere, take its link down and set a balloon target, migrate again."""
    examples = _examples()
    before, after = examples.make_pair(tmp_path, tmp_path)
    report = diff_files(before, after)
    found = {(s.idstr.rsplit("/", 1)[-1], c.path, c.kind, c.a, c.b) for s in report.sections for c in s.changes}
    pages = examples.BALLOON_TARGET // 4096
    assert found == {
        ("virtio-net", "virtio.device.status", "changed", 1, 0),  # VIRTIO_NET_S_LINK_UP cleared
        ("virtio-balloon", "virtio.device.num_pages", "changed", 0, 16 * 256 - pages),
    }
    assert not report.ram and not report.header
    assert diff_files(before, before).identical


def _paused_stream(tmp_path: Path, name: str, *extra: str) -> Path:
    examples = _examples()
    target = tmp_path / name
    argv = ["qemu-system-x86_64", "-M", "pc-i440fx-7.2", "-S", "-nodefaults", "-nographic", "-m", "16",
            "-rtc", "base=2020-01-01T00:00:00,clock=vm", *extra]
    with examples.vm(argv, tmp_path) as qmp:
        examples.migrate_to(qmp, target)
    return target


def test_ram_loaded_by_one_vm_only_shows_as_its_page_range(tmp_path: Path) -> None:
    blob = tmp_path / "blob.bin"
    blob.write_bytes(os.urandom(3 * 4096 + 100))  # 4 pages touched, the last partly
    plain = _paused_stream(tmp_path, "plain.mig")
    loaded = _paused_stream(tmp_path, "loaded.mig", "-device", f"loader,file={blob},addr=0x200000")
    report = diff_files(plain, loaded)
    assert not report.sections and not report.header
    (ram,) = report.ram
    assert ram.block == "pc.ram" and ram.differing_pages == 4
    assert [(r.first * ram.page_size, r.count, r.kind) for r in ram.ranges] == [(0x200000, 4, "changed")]
