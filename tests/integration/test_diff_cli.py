"""The installed ``migration-diff`` script (and ``vmstate diff``), run as a real subprocess."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.support.cli import run_script
from tests.support.paths import CORPUS, ROOT
from vmstate import __version__

EXAMPLES = ROOT / "compat_fixtures" / "examples"
BEFORE = EXAMPLES / "pc-net-balloon-before.mig.xz"
AFTER = EXAMPLES / "pc-net-balloon-after.mig.xz"


def run(*args: str | Path, script: str = "migration-diff") -> subprocess.CompletedProcess[str]:
    return run_script(script, *args)


def test_version_and_help() -> None:
    version = run("--version")
    assert (version.returncode, version.stdout.strip()) == (0, f"migration-diff, version {__version__}")
    for args in (["--help"], ["-h"]):
        result = run(*args)
        assert result.returncode == 0 and result.stdout.startswith("Usage: migration-diff")
    assert run("diff", "--help", script="vmstate").stdout.startswith("Usage: vmstate diff")


def test_the_bundled_example_pair_differs_in_link_and_balloon_only() -> None:
    result = run(BEFORE, AFTER)
    assert result.returncode == 1, result.stderr
    assert result.stderr == ""
    changes = [line for line in result.stdout.splitlines() if not line.startswith(("---", "+++"))]
    assert len(changes) == 2
    assert changes[0].endswith("/virtio-net: virtio.device.status: 1 -> 0")
    assert changes[1].endswith("/virtio-balloon: virtio.device.num_pages: 0 -> 2048")


def test_same_input_exits_0_and_vmstate_diff_agrees() -> None:
    for script in ("migration-diff", "vmstate"):
        args = (BEFORE, BEFORE) if script == "migration-diff" else ("diff", BEFORE, BEFORE)
        result = run(*args, script=script)
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines()[-1] == "no differences"


def test_json_output_is_the_documented_schema() -> None:
    result = run("--json", BEFORE, AFTER)
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["schema"] == "vmstate-forge/migration-diff/1"
    assert report["identical"] is False and report["ram"] == [] and report["header"] == []
    paths = [(s["section"].rsplit("/", 1)[-1], c["path"], c["a"], c["b"]) for s in report["sections"] for c in s["changes"]]
    assert paths == [("virtio-net", "virtio.device.status", 1, 0), ("virtio-balloon", "virtio.device.num_pages", 0, 2048)]


def test_summary_ignore_and_section_options() -> None:
    summary = run("--summary", BEFORE, AFTER)
    assert summary.returncode == 1
    assert summary.stdout.splitlines()[-1] == "2 sections differ, 0 RAM pages differ"
    assert run("--ignore", "*.status", "--ignore", "*num_pages", BEFORE, AFTER).returncode == 0
    only_net = run("--section", "*virtio-net", BEFORE, AFTER)
    assert only_net.returncode == 1 and "virtio-balloon" not in only_net.stdout


def test_color_always_never_and_auto_when_piped() -> None:
    assert "\x1b[" in run("--color", "always", BEFORE, AFTER).stdout
    assert "\x1b[" not in run("--color", "never", BEFORE, AFTER).stdout
    assert "\x1b[" not in run(BEFORE, AFTER).stdout  # auto, and stdout is a pipe
    assert run(BEFORE, AFTER).stderr == ""  # no progress bar when stderr is not a terminal


def _bad_inputs(tmp_path: Path) -> dict[str, Path]:
    from streams.files import open_stream

    with open_stream(BEFORE) as handle:
        data = handle.read()
    cases = {
        "truncated": data[: len(data) // 2],
        "not a stream": b"hello, world\n" * 10,
        "wrong magic": b"QEVX" + data[4:],
        "empty": b"",
    }
    paths = {}
    for name, content in cases.items():
        paths[name] = tmp_path / (name.replace(" ", "-") + ".mig")
        paths[name].write_bytes(content)
    paths["missing"] = tmp_path / "no-such-file.mig"
    return paths


def test_bad_files_give_one_line_and_exit_2(tmp_path: Path) -> None:
    for name, path in _bad_inputs(tmp_path).items():
        for args in ((BEFORE, path), (path, BEFORE)):
            result = run(*args)
            assert result.returncode == 2, (name, result.stdout, result.stderr)
            lines = result.stderr.splitlines()
            assert len(lines) == 1 and lines[0].startswith("migration-diff: error: "), (name, result.stderr)
            assert "Traceback" not in result.stderr
    truncated = run(BEFORE, tmp_path / "truncated.mig")
    assert "0x" in truncated.stderr or "offset" in truncated.stderr


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mig"
    bad.write_bytes(b"QEVM\x00\x00\x00\x03\x07")
    result = run("--debug", BEFORE, bad)
    assert result.returncode == 2 and "Traceback" in result.stderr


def test_an_error_names_the_file_it_is_about(tmp_path: Path) -> None:
    truncated = _bad_inputs(tmp_path)["truncated"]
    for args in ((BEFORE, truncated), (truncated, BEFORE)):
        result = run(*args)
        assert result.returncode == 2
        assert result.stderr.startswith(f"migration-diff: error: {truncated}: at 0x"), result.stderr


def test_raw_bodies_strings_and_counts_read_as_text(tmp_path: Path) -> None:
    # piix4_pm with 257 memory slots (more than ACPI_MAX_RAM_SLOTS) is a body nothing describes
    old, new = tmp_path / "slots-257.mig", tmp_path / "changed.mig"
    more = (CORPUS / "pc-2.2-virtio-more.mig").read_bytes()
    devs = more.index(b"piix4_pm/memhp") + len(b"piix4_pm/memhp") + 8  # version, selector, then 2 slot statuses
    old.write_bytes(more[:devs] + bytes(10 * 257) + more[devs + 20:])
    data = bytearray(old.read_bytes())
    body = data.index(b"\x150000:00:01.3/piix4_pm") + 1 + 21 + 8
    data[body + 3] ^= 0xFF
    new.write_bytes(bytes(data))
    raw = run(old, new)
    [line] = raw.stdout.splitlines()[2:]
    assert line.startswith("0000:00:01.3/piix4_pm: (raw body): ") and line.endswith(" bytes, first difference at byte 0x3")
    summary = run("--summary", old, new).stdout.splitlines()[2:]
    assert summary == ["0000:00:01.3/piix4_pm: raw body differs", "1 section differs, 0 RAM pages differ"]
    machines = run(CORPUS / "pc-7.2-virtio-net-legacy.mig", CORPUS / "q35-7.2-virtio-net-legacy.mig").stdout
    assert 'stream: configuration.name: "pc-i440fx-7.2" -> "pc-q35-7.2"' in machines.splitlines()
    runstates = run(CORPUS / "pc-7.2-booted-virtio-legacy.mig.xz", CORPUS / "pc-7.2-virtio-all-legacy.mig").stdout
    assert 'globalstate: runstate: "paused" -> "prelaunch"' in runstates.splitlines()
    assert "1 page differs in 1 range" in machines


def test_two_fields_of_the_same_name_print_apart() -> None:
    """i8254's vmdesc has a top-level field named ``channels[0].next_transition_time`` (hw/timer/i8254_common.c)."""
    lines = run(CORPUS / "pc-7.2-booted-virtio-legacy.mig.xz", CORPUS / "pc-7.2-virtio-all-legacy.mig").stdout.splitlines()
    pit = [line for line in lines if "next_transition_time" in line]
    assert pit == ["i8254: channels[0].next_transition_time: 0xfec612bf -> 0x1a30c2c",
                   'i8254: "channels[0].next_transition_time": 0xfec612bf -> 0x1a30c2c']
    ignored = run("--ignore", '"channels[0].next_transition_time"', CORPUS / "pc-7.2-booted-virtio-legacy.mig.xz",
                  CORPUS / "pc-7.2-virtio-all-legacy.mig").stdout.splitlines()
    assert [line for line in ignored if "next_transition_time" in line] == pit[:1]


def test_globs_that_match_nothing_are_an_error() -> None:
    for option, glob in (("--section", "no-such-device"), ("--ignore", "virtio.no_such_field"),
                         ("--ignore", "*:nothing.at.all")):
        result = run(option, glob, BEFORE, AFTER)
        assert result.returncode == 2, (glob, result.stdout)
        assert result.stderr == (f"migration-diff: error: nothing in A or B matches {glob!r} (--section matches"
                                 " section names, --ignore names and field paths)\n")
        assert result.stdout == ""
    # a glob that matches something where nothing differs is not an error
    assert run("--section", "timer", BEFORE, AFTER).returncode == 0
    assert run("--ignore", "*.last_avail_idx", "--ignore", "ram/*", BEFORE, BEFORE).returncode == 0


def test_summary_and_json_together_are_refused() -> None:
    result = run("--summary", "--json", BEFORE, AFTER)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("migration-diff: error: --summary and --json do not combine")


def test_version_is_named_as_invoked_and_help_has_no_markup() -> None:
    version = run("diff", "--version", script="vmstate")
    assert (version.returncode, version.stdout) == (0, f"vmstate diff, version {__version__}\n")
    helps = [["--help"], *([command, "--help"] for command in ("dump", "check", "describe", "extract", "convert", "diff")),
             *(["compat", command, "--help"] for command in ("schema", "diff", "check", "record"))]
    for script, args in [("migration-diff", ["--help"]), *(("vmstate", h) for h in helps)]:
        result = run(*args, script=script)
        assert result.returncode == 0 and "`" not in result.stdout, (args, result.stdout)


def test_named_values_in_text_numbers_in_json() -> None:
    be, le = CORPUS / "virt-7.2-bare-be-mmio.mig.xz", CORPUS / "virt-7.2-bare-le-mmio.mig.xz"
    lines = run(be, le).stdout.splitlines()
    assert ("virtio-mmio@000000000a003e00/virtio-net: virtio.virtio/device_endian: subsection only in A"
            " (v1: device_endian=big (2))") in lines
    report = json.loads(run("--json", be, le).stdout)
    (net,) = [s for s in report["sections"] if s["section"].endswith("/virtio-net")]
    (endian,) = [c for c in net["changes"] if c["path"] == "virtio.virtio/device_endian"]
    assert endian["a"] == {"version": 1, "fields": {"device_endian": 2}, "subsections": {}}


def _with_small_pages(path: Path, target: Path, shift: int = 2) -> Path:
    """``path`` written again with every RAM page as 2**shift pages of a smaller target page size.

    The guest memory is the same byte for byte; only the page size (the
    configuration's target-page-bits, the vmdesc's page_size) and the page
    records change, as between an aarch64 ``virt`` with 4 KiB and one with
    1 KiB target pages.
    """
    import attrs

    from streams.qemu import RamFlag, RamPage, StreamReader, StreamWriter
    from streams.records import Configuration, RamZero, VmDescription
    from vmstate.description import Record

    def records():  # type: ignore[no-untyped-def]
        with open(path, "rb") as source:
            reader = StreamReader(source)
            for record in reader:
                if isinstance(record, Configuration):
                    sub = record.record.subsections["configuration/target-page-bits"]
                    bits = Record(sub.version, {"target_page_bits": int(sub.fields["target_page_bits"]) - shift})
                    subsections = {**record.record.subsections, "configuration/target-page-bits": bits}
                    yield attrs.evolve(record, record=Record(record.record.version, record.record.fields, subsections))
                elif isinstance(record, (RamPage, RamZero)):
                    size = reader.page_size >> shift
                    for i in range(1 << shift):
                        flags = record.flags | (RamFlag.CONTINUE if i else 0)
                        offset = record.offset + i * size
                        if isinstance(record, RamPage):
                            yield RamPage(record.block, offset, flags, record.data[i * size:(i + 1) * size])
                        else:
                            yield RamZero(record.block, offset, flags, record.fill)
                elif isinstance(record, VmDescription):
                    vmdesc = record.parsed()
                    vmdesc["page_size"] >>= shift
                    yield VmDescription(json.dumps(vmdesc).encode())
                else:
                    yield record

    with open(target, "wb") as sink:
        StreamWriter(sink).write_all(records())
    return target


def test_ram_of_different_page_sizes_is_refused(tmp_path: Path) -> None:
    """Page N of a 1 KiB-page stream is not page N of a 4 KiB one: no ranges neither side sent."""
    four = CORPUS / "virt-7.2-virtio-mmio-all.mig"
    one = _with_small_pages(four, tmp_path / "1k-pages.mig")
    assert run_script("vmstate", "check", one).returncode == 0
    result = run(four, one)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == ("migration-diff: error: A has 4096-byte target pages, B 1024-byte ones: RAM block"
                             " 'virt.flash0' cannot be compared page by page (leave RAM out with --ignore 'ram/*')\n")
    without_ram = run("--ignore", "ram/*", four, one)
    assert without_ram.returncode == 1
    assert without_ram.stdout.splitlines()[2:] == [
        "stream: configuration.configuration/target-page-bits.target_page_bits: 12 -> 10"]
    assert run(one, one).returncode == 0


def test_list_items_that_changed_alike_fold_into_one_line_whose_count_the_json_bears_out() -> None:
    """A paused VM against the same VM booted: virtio-console's 64 queues all got MSI-X vector 1 but vq[3]."""
    import re

    a, b = CORPUS / "pc-7.2-virtio-all-legacy.mig", CORPUS / "pc-7.2-booted-virtio-legacy.mig.xz"
    text = run("--ignore", "ram/*", a, b)
    report = json.loads(run("--ignore", "ram/*", "--json", a, b).stdout)
    assert text.returncode == 1, text.stderr
    lines = text.stdout.splitlines()[2:]
    assert "0000:00:04.0/virtio-console: virtio.vq[4..63].vector: 65535 -> 1 (60 items)" in lines
    for section in (s for s in report["sections"] if s["status"] == "changed"):
        name = section["section"] if section["instance_id"] == 0 else f"{section['section']}#{section['instance_id']}"
        mine = [line.removeprefix(f"{name}: ") for line in lines if line.startswith(f"{name}: ")]
        changes = {c["path"]: c for c in section["changes"]}
        shown = 0
        for line in mine:
            fold = re.fullmatch(r"(.*)\[(\d+)\.\.(\d+)\]([^\[]*?): (.*) -> (.*) \((\d+) items\)", line)
            if fold is None:
                shown += 1
                continue
            first, last, count = int(fold[2]), int(fold[3]), int(fold[7])
            assert count == last - first + 1 > 2, line
            paths = [f"{fold[1]}[{i}]{fold[4]}" for i in range(first, last + 1)]
            assert all(changes[p]["kind"] == "changed" for p in paths), line
            assert len({(json.dumps(changes[p]["a"]), json.dumps(changes[p]["b"])) for p in paths}) == 1, line
            shown += count
        assert shown == len(section["changes"]), name
