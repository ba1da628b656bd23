"""migration-diff of QEMU 7.2 and QEMU 10.0 streams of the same paused VM: what really differs.

Every pair is two committed real streams (compat_fixtures/generate.py): the same command line, one
written by QEMU 7.2, the other by QEMU 10.0.2 on 7.2's machine type (``*-10.0-on-7.2-*``) or on its
own (``pc-10.0-*``).  The differences asserted are the ones these streams show, each with its cause.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.cli import run_script
from tests.support.paths import CORPUS
from vmstate.diff import diff_files
from vmstate.diff import DiffReport

#: the RTC's clock fields: they differ between any two runs (the wall clock at start-up)
RTC_CLOCK = {"cmos_data", "base_rtc", "last_update", "update_timer", "next_alarm_time"}
#: the ACPI tables QEMU builds into ROM blocks: 10.0 builds other tables for the same machine type
ACPI_ROMS = {"/rom@etc/acpi/tables", "/rom@etc/table-loader", "/rom@etc/acpi/rsdp"}


def _diff(a: str, b: str) -> DiffReport:
    return diff_files(CORPUS / a, CORPUS / b)


def _changes(report: DiffReport) -> dict[str, set[tuple[str, str]]]:
    return {s.idstr: {(c.path, c.kind) for c in s.changes} for s in report.sections}


def _suspended_flag_set_by_ten(report: DiffReport) -> None:
    """globalstate: 10.0 puts has_vm_was_suspended = 1 at byte 32 of what 7.2 reads as a 100-byte runstate."""
    (change,) = next(s for s in report.sections if s.idstr == "globalstate").changes
    assert change.path == "runstate"
    a, b = bytes(change.a), bytes(change.b)
    assert a.rstrip(b"\0") == b.split(b"\0", 1)[0] == b"prelaunch"
    assert (a[32], b[32], b[33]) == (0, 1, 0) and a[33:] == b[33:] == bytes(67)


def test_pc_seven_two_under_both_qemus_differs_in_clocks_acpi_and_the_suspended_flag() -> None:
    report = _diff("pc-7.2-virtio-all-legacy.mig", "pc-10.0-on-7.2-virtio-all-legacy.mig.xz")
    assert not report.header  # same file version, machine type, no command
    assert {s.idstr: s.status for s in report.sections} == {"mc146818rtc": "changed", "globalstate": "changed"}
    assert {path for path, _ in _changes(report)["mc146818rtc"]} == RTC_CLOCK
    _suspended_flag_set_by_ten(report)
    assert all(s.version_a == s.version_b for s in report.sections)
    # every virtio device, the CPU, the chipset: identical bytes under both QEMUs
    assert {r.block for r in report.ram} == ACPI_ROMS


def test_q35_multiqueue_and_the_vga_pair_show_the_same_and_the_gpu_scanout_slip() -> None:
    q35 = _diff("q35-7.2-virtio-multiqueue.mig", "q35-10.0-on-7.2-virtio-multiqueue.mig.xz")
    assert {s.idstr for s in q35.sections} == {"mc146818rtc", "globalstate"}
    _suspended_flag_set_by_ten(q35)
    vga = _diff("pc-7.2-virtio-vga.mig", "pc-10.0-on-7.2-virtio-vga.mig.xz")
    fb = ("fb_format", "fb_bytes_pp", "fb_width", "fb_height", "fb_stride", "fb_offset")
    # pc-i440fx-7.2 sets x-scanout-vmstate-version 1, which scanout 0 obeys; scanout 1's test reads another byte
    assert _changes(vga)["0000:00:02.0/virtio-gpu"] == {
        (f"virtio-gpu.scanouts.scanout[1].{name}", "only_b") for name in fb
    }


def test_pc_ten_machine_type_adds_a_command_and_balloon_msix() -> None:
    report = _diff("pc-7.2-virtio-all-legacy.mig", "pc-10.0-virtio-all-legacy.mig.xz")
    assert {(c.path, c.a, c.b) for c in report.header} == {
        ("configuration.len", 13, 14), ("configuration.name", b"pc-i440fx-7.2", b"pc-i440fx-10.0"), ("commands", 0, 1),
    }
    changes = _changes(report)
    # virtio-balloon-pci has MSI-X vectors on 10.0's machine type (0 on 7.2's): capability, table, PBA, vectors
    assert changes["0000:00:05.0/virtio-balloon"] == {
        ("virtio.transport.pci.config", "changed"), ("virtio.transport.msix_table", "only_b"),
        ("virtio.transport.msix_pba", "only_b"), ("virtio.transport.config_vector", "only_b"),
        *((f"virtio.vq[{i}].vector", "only_b") for i in range(3)),
    }
    assert set(changes) == {"mc146818rtc", "globalstate", "0000:00:05.0/virtio-balloon"}


def test_pseries_seven_two_under_ten_moves_slb_to_version_two_and_drops_icp_server() -> None:
    report = _diff("pseries-7.2-virtio-all-legacy.mig", "pseries-10.0-on-7.2-virtio-all-legacy.mig.xz")
    sections = {s.idstr: s for s in report.sections}
    assert sections["icp/server"].status == "only_a"
    cpu = {c.path: (c.kind, c.a, c.b) for c in sections["cpu"].changes}
    assert cpu["cpu/slb.(version)"] == ("version", 1, 2)
    # env.reserve_addr became VMSTATE_UNUSED (zeros) when it moved to a cpu/reservation subsection
    assert cpu['"env.reserve_addr"'] == ("changed", 0xFFFFFFFFFFFFFFFF, 0)
    assert {c.path for c in sections["spapr"].changes} >= {"spapr_dtb.fdt_blob", "tb.guest_timebase"}
    _suspended_flag_set_by_ten(report)


def test_virt_seven_two_under_ten_has_more_cpu_registers_and_a_new_pl011_layout() -> None:
    report = _diff("virt-7.2-virtio-mmio-all.mig", "virt-10.0-on-7.2-virtio-mmio-all.mig.xz")
    sections = {s.idstr: s for s in report.sections}
    cpu = {c.path: (c.kind, c.a, c.b) for c in sections["cpu"].changes}
    assert cpu["cpreg_vmstate_array_len"] == ("changed", 258, 274)
    assert cpu['"gt_timer[0]"'][0] == "only_a" and cpu['"gt_timer[GTIMER_PHYS]"'][0] == "only_b"  # vmdesc names
    assert {(c.path, c.kind) for c in sections["pl011"].changes} == {("readbuff", "only_a"), ("unused", "only_b")}
    assert not any("virtio" in idstr for idstr in sections)


def test_migration_diff_prints_the_version_change_and_the_lost_section(tmp_path: Path) -> None:
    done = run_script("migration-diff", "--ignore", "ram/*", CORPUS / "pseries-7.2-virtio-all-legacy.mig",
                      CORPUS / "pseries-10.0-on-7.2-virtio-all-legacy.mig.xz")
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    assert "cpu: cpu/slb.(version): 1 -> 2" in lines
    assert "icp/server: section only in A (version 1)" in lines
