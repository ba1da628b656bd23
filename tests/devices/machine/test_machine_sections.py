"""devices.machine: the x86 and ppc64 machine sections of old-layout streams, every byte named.

Streams of machine types before 2.3 carry no vmdesc: before these
descriptions every cpu, apic, hpet, PIIX, spapr... section of them was kept
raw.  All streams here are real QEMU 7.2 (compat_fixtures/generate.py).
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices import DEFAULT_REGISTRY
from devices.machine import X86CpuState
from devices.machine.pc_chipset import Apic, Hpet
from streams.files import open_stream
from streams.qemu import DeviceState, RawBody, StreamReader, check_stream, encode_record
from vmstate import from_record
from vmstate.errors import LimitExceededError, VMStateError

_OLD_PC: dict[str, bytes] = {}

#: every real stream of the corpus without a vmdesc trailer
OLD_LAYOUT = ["pc-2.1-virtio-all.mig", "pc-2.2-virtio-all.mig", "pseries-2.2-virtio-all.mig",
              "pc-2.1-smp2-hpet4-cdrom.mig"]


def _sections(path: Path) -> list[DeviceState | RawBody]:
    with open_stream(path) as source:
        return [r for r in StreamReader(source, descriptions=DEFAULT_REGISTRY) if isinstance(r, (DeviceState, RawBody))]


def _by_idstr(path: Path) -> dict[tuple[str, int], DeviceState]:
    return {(s.idstr, s.instance_id): s for s in _sections(path) if isinstance(s, DeviceState)}


@pytest.mark.parametrize("name", OLD_LAYOUT)
def test_every_section_of_an_old_layout_stream_is_typed_and_written_back(corpus_file, name: str) -> None:  # type: ignore[no-untyped-def]
    path = corpus_file(name)
    with open_stream(path) as source:
        assert StreamReader(source).vmdesc is None  # nothing of QEMU's names a field here
    sections = _sections(path)
    assert [s for s in sections if isinstance(s, RawBody)] == []
    assert len(sections) >= 19
    assert {s.source for s in sections if isinstance(s, DeviceState)} == {"typed"}
    with open_stream(path) as source, open_stream(path) as original:
        report = check_stream(source, original, descriptions=DEFAULT_REGISTRY)
    assert report.identical and report.raw_bytes == 0
    assert all(s.fallback is None for s in report.sections)


@pytest.mark.parametrize(
    ("name", "idstr", "variant"),
    [
        ("pc-2.2-virtio-all.mig", "0000:00:01.3/piix4_pm", "piix4_pm@2.x"),
        ("pc-7.2-virtio-all-legacy.mig", "0000:00:01.3/piix4_pm", "piix4_pm"),
        ("pseries-2.2-virtio-all.mig", "cpu", "cpu@ppc64-pre-2.8"),
        ("pseries-7.2-virtio-all-legacy.mig", "cpu", "cpu@ppc64"),
        ("pseries-2.2-virtio-all.mig", "spapr_pci", "spapr_pci@pre-2.8"),
        ("pseries-7.2-virtio-all-legacy.mig", "spapr_pci", "spapr_pci"),
        ("pc-2.2-virtio-all.mig", "cpu", "cpu@x86_64"),
    ],
)
def test_the_section_end_picks_the_variant_of_a_property_gated_layout(corpus_file, name: str, idstr: str, variant: str) -> None:  # type: ignore[no-untyped-def]
    section = _by_idstr(corpus_file(name))[(idstr, 0)]
    assert section.source == "typed"
    assert section.description.name == variant
    # a sibling variant that did not fit is no fallback
    assert section.fallback is None


def test_the_decoded_x86_state_is_a_vcpu_at_reset(corpus_file) -> None:  # type: ignore[no-untyped-def]
    sections = _by_idstr(corpus_file("pc-2.1-smp2-hpet4-cdrom.mig"))
    cpu = from_record(X86CpuState, sections[("cpu", 0)].record)
    # the reset vector: CS base 0xffff0000, IP 0xfff0; CR0 with ET and CD|NW
    assert (cpu.eip, cpu.segs[1].selector, cpu.segs[1].base) == (0xFFF0, 0xF000, 0xFFFF0000)
    assert cpu.cr0 == 0x60000010
    # KVM enables the poll-control MSR (1); under TCG it stays 0, so its subsection is sent
    assert "cpu/poll_control_msr" in sections[("cpu", 0)].record.subsections and cpu.poll_control_msr == 0
    assert sections[("cpu", 0)].record.fields["env.regs"] == cpu.regs
    # the second vCPU waits for a SIPI: its apic carries `apic_sipi`, the boot CPU's does not
    boot, ap = (from_record(Apic, sections[("apic", i)].record) for i in (0, 1))
    assert "apic_sipi" in sections[("apic", 1)].record.subsections and ap.wait_for_sipi == 1
    assert "apic_sipi" not in sections[("apic", 0)].record.subsections and boot.wait_for_sipi == 0
    hpet = from_record(Hpet, sections[("hpet", 0)].record)
    assert hpet.num_timers == 4 and [t.tn for t in hpet.timer] == [0, 1, 2, 3]


def test_the_decoded_pseries_state(corpus_file) -> None:  # type: ignore[no-untyped-def]
    sections = _by_idstr(corpus_file("pseries-2.2-virtio-all.mig"))
    ics = sections[("ics", 0)].record.fields
    assert ics["nr_irqs"] == len(ics["irqs"]) == 1024  # XICS_IRQS_SPAPR before 2.x's larger space
    nvram = sections[("nvram@71000000/spapr_nvram", 0)].record.fields
    assert nvram["size"] == len(nvram["buf"]) == 65536
    iommu = sections[("spapr_iommu", 0x80000000)].record.fields
    assert iommu["mig_nb_table"] == len(iommu["mig_table"]) == 0x1000000 // 4096  # the 16 MiB DMA window
    cpu = sections[("cpu", 0)].record
    assert set(cpu.subsections) == {"cpu/fpu", "cpu/altivec", "cpu/vsx", "cpu/slb"}
    assert cpu.subsections["cpu/slb"].fields["mig_slb_nr"] == 32


def test_a_hostile_count_in_a_typed_old_section_is_a_limit_error(corpus_file, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = bytearray(corpus_file("pseries-2.2-virtio-all.mig").read_bytes())
    idstr = b"nvram@71000000/spapr_nvram"
    at = data.index(idstr) + len(idstr) + 8  # past instance id and version: the NVRAM size
    assert data[at:at + 4] == (65536).to_bytes(4, "big")
    data[at:at + 4] = (0x7FFFFFFF).to_bytes(4, "big")
    with pytest.raises(LimitExceededError) as raised:
        list(StreamReader(io.BytesIO(bytes(data)), descriptions=DEFAULT_REGISTRY))
    assert "max_buffer" in str(raised.value) and raised.value.offset is not None


def test_every_typed_section_re_encodes_to_its_bytes(corpus_file) -> None:  # type: ignore[no-untyped-def]
    for name in OLD_LAYOUT:
        for section in _sections(corpus_file(name)):
            assert isinstance(section, DeviceState)
            assert len(encode_record(section)) == section.size


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(min_value=0, max_value=1 << 30), flip=st.integers(min_value=0, max_value=255))
def test_damage_in_the_machine_sections_gives_only_our_errors(corpus_file, cut: int, flip: int) -> None:  # type: ignore[no-untyped-def]
    data = _OLD_PC.get("data") or _OLD_PC.setdefault("data", corpus_file("pc-2.1-smp2-hpet4-cdrom.mig").read_bytes())
    start = data.index(b"\x03cpu")  # the machine sections follow RAM
    at = start + cut % (len(data) - start)
    for damaged in (data[:at], data[:at] + bytes([data[at] ^ flip or 1]) + data[at + 1:]):
        try:
            for _ in StreamReader(io.BytesIO(damaged), descriptions=DEFAULT_REGISTRY):
                pass
        except VMStateError as error:
            assert error.offset is not None


# ------------------------------------------------------------------ memory slots

#: real streams of machines with memory slots: (fixture, idstr, slot count, variant)
MEMORY_SLOTS = [
    ("pc-2.2-memory-slots.mig", 4, "piix4_pm@2.x"),  # -m 16,slots=4,maxmem=1G
    ("pc-2.2-virtio-more.mig", 2, "piix4_pm@2.x"),  # virtio-mem's -m 16,slots=2,maxmem=512M
    ("pc-7.2-virtio-mem-modern.mig", 2, "piix4_pm"),
]
_PIIX4_PM = "0000:00:01.3/piix4_pm"
_MEMHP = b"piix4_pm/memhp"


@pytest.mark.parametrize(("name", "slots", "variant"), MEMORY_SLOTS)
def test_the_section_end_gives_piix4_pm_its_memory_slot_count(corpus_file, name: str, slots: int, variant: str) -> None:  # type: ignore[no-untyped-def]
    path = corpus_file(name)
    section = _by_idstr(path)[(_PIIX4_PM, 0)]
    assert (section.source, section.description.name, section.fallback) == ("typed", variant, None)
    memhp = section.record.subsections["piix4_pm/memhp"].fields["acpi_memory_hotplug"]
    # a paused guest plugged no DIMM: every slot's status is clear
    assert memhp.fields["selector"] == 0
    assert [dict(d.fields) for d in memhp.fields["devs"]] == [
        {"is_enabled": False, "is_inserting": False, "ost_event": 0, "ost_status": 0}] * slots
    assert section.state.memory_hotplug.selector == 0
    with open_stream(path) as source, open_stream(path) as original:
        report = check_stream(source, original, descriptions=DEFAULT_REGISTRY)
    assert report.identical and report.raw_bytes == 0 and report.unnamed == []


def test_qemu_s_own_vmdesc_counts_the_slots_we_found(corpus_file) -> None:  # type: ignore[no-untyped-def]
    path = corpus_file("pc-7.2-virtio-mem-modern.mig")
    with open_stream(path) as source:
        vmdesc = StreamReader(source).vmdesc
    assert vmdesc is not None
    (entry,) = [d for d in vmdesc["devices"] if d["name"] == _PIIX4_PM]
    (memhp,) = [s for s in entry["subsections"] if s["vmsd_name"] == "piix4_pm/memhp"]
    devs = memhp["fields"][0]["struct"]["fields"][1]
    assert (devs["name"], devs["array_len"], devs["size"]) == ("devs", 2, 10)


def _with_slots(data: bytes, slots: int, now: int = 4) -> bytes:
    """A stream of ``now`` memory slots with ``slots`` clear slot statuses instead."""
    devs = data.index(_MEMHP) + len(_MEMHP) + 4 + 4  # name, version, selector
    assert data[devs:devs + 10 * now] == bytes(10 * now)  # clear, as a paused guest leaves them
    return data[:devs] + bytes(10 * slots) + data[devs + 10 * now:]


@pytest.mark.parametrize("slots", [1, 5, 256])
def test_any_slot_count_up_to_acpi_max_ram_slots_is_named(corpus_file, slots: int) -> None:  # type: ignore[no-untyped-def]
    data = _with_slots(corpus_file("pc-2.2-memory-slots.mig").read_bytes(), slots)
    section = next(r for r in StreamReader(io.BytesIO(data), descriptions=DEFAULT_REGISTRY)
                   if isinstance(r, DeviceState) and r.idstr == _PIIX4_PM)
    assert section.source == "typed"
    assert len(section.record.subsections["piix4_pm/memhp"].fields["acpi_memory_hotplug"].fields["devs"]) == slots


def test_more_slots_than_a_pc_machine_takes_is_not_named(corpus_file, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from tests.support.cli import run_script

    # (in pc-2.2-virtio-more, sections follow piix4_pm: a misfit is no truncation)
    path = tmp_path / "slots-257.mig"
    path.write_bytes(_with_slots(corpus_file("pc-2.2-virtio-more.mig").read_bytes(), 257, now=2))
    result = run_script("vmstate", "check", path)
    assert result.returncode == 1
    assert "1 section(s) NOT NAMED" in result.stdout
    assert "no section boundary where the typed description 'piix4_pm' ends" in result.stdout
