"""``vmstate edit``: set and get fields by path, QEMU's save rules after the change, refusals that write nothing."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices import DEFAULT_REGISTRY
from devices.cpu import Endian
from devices.virtio.serial import DEFAULT_MAX_PORTS
from streams.formats import open_records
from streams.records import DeviceState
from tests.support.cli import run_script
from tests.support.paths import CORPUS
from vmstate.description import Buffer, Int, Record
from vmstate.edit import virtio_devices
from vmstate.edit.fields import Assignment, edit_section, get_field
from vmstate.edit.paths import FieldRef, parse_path, parse_ref, show_path, split_assignment
from vmstate.edit.stream import _Walk, edit_file, get_fields
from vmstate.edit.values import parse_value, show_value
from vmstate.engine import encode
from vmstate.errors import EditError

NET_PC = CORPUS / "pc-7.2-virtio-net-legacy.mig"
NET = "0000:00:02.0/virtio-net"
PSERIES = CORPUS / "pseries-7.2-virtio-all-legacy.mig"
CONSOLE = "pci@800000020000000:02.0/virtio-console"
BALLOON = "pci@800000020000000:03.0/virtio-balloon"


def _set(source: Path, out: Path, *sets: str) -> int:
    return edit_file(source, out, [Assignment(parse_ref(r), v) for r, v in map(split_assignment, sets)],
                     descriptions=DEFAULT_REGISTRY)


def _get(source: Path, *refs: str) -> list[str]:
    return [value for _ref, value in get_fields(source, [parse_ref(r) for r in refs], descriptions=DEFAULT_REGISTRY)]


def _devices(path: Path) -> dict[str, object]:
    with open(path, "rb") as source:
        return dict(virtio_devices(source))


# ------------------------------------------------------------------ paths and values


def test_a_reference_splits_at_the_last_colon_outside_quotes() -> None:
    ref = parse_ref(f'{NET}:virtio.vq[2].num')
    assert (ref.idstr, ref.instance_id, ref.steps) == (NET, 0, ("virtio", "vq", 2, "num"))
    ref = parse_ref('cpu#1:"env.regs"[3]')
    assert (ref.idstr, ref.instance_id, ref.steps) == ("cpu", 1, ("env.regs", 3))
    assert split_assignment('a:"x=y"=5') == ('a:"x=y"', "5")


@pytest.mark.parametrize("text", ["", "a..b", "a[x]", "a]", '"open', "a[1]b"])
def test_a_malformed_path_is_an_edit_error(text: str) -> None:
    with pytest.raises(EditError):
        parse_path(text)


_NAME = st.text(st.characters(codec="latin-1", exclude_characters="\\"), min_size=1, max_size=8)


@given(st.lists(st.one_of(_NAME, st.integers(0, 2000)), min_size=1, max_size=6).filter(lambda s: isinstance(s[0], str)))
@settings(max_examples=300)
def test_a_shown_path_parses_back_to_its_steps(steps: list[str | int]) -> None:
    assert parse_path(show_path(tuple(steps))) == tuple(steps)


@given(st.integers(1, 8).flatmap(lambda w: st.tuples(st.just(w), st.booleans())).flatmap(
    lambda ws: st.tuples(st.just(Int(width=ws[0] if ws[0] in (1, 2, 4, 8) else 4, signed=ws[1])), st.data())))
@settings(max_examples=200)
def test_an_integer_shown_parses_back_and_one_out_of_range_is_refused(case: tuple[Int, st.DataObject]) -> None:
    kind, data = case
    value = data.draw(st.integers(kind.minimum, kind.maximum))
    text = data.draw(st.sampled_from([str(value), hex(value), show_value(value, kind)]))
    assert parse_value(text, kind, 0, "f") == value
    with pytest.raises(EditError, match="does not fit"):
        parse_value(str(kind.maximum + 1), kind, 0, "f")


@given(st.binary(min_size=6, max_size=6))
def test_a_mac_shown_parses_back(mac: bytes) -> None:
    kind = Buffer(size=6, type_name="mac")
    assert show_value(mac, kind).count(":") == 5
    assert parse_value(show_value(mac, kind), kind, b"\0" * 6, "mac") == mac


def test_enum_names_and_byte_lengths() -> None:
    names = Int(width=1, names=((1, "little"), (2, "big")))
    assert parse_value("BIG", names, 1, "e") == 2
    assert show_value(1, names) == "little (1)"
    with pytest.raises(EditError, match="little, big"):
        parse_value("middle", names, 1, "e")
    with pytest.raises(EditError, match="3 bytes given, the field holds 6"):
        parse_value("52:54:00", Buffer(size=6, type_name="mac"), b"\0" * 6, "mac")


# ------------------------------------------------------------------ whole files


def test_a_mac_set_by_path_is_the_only_change(tmp_path: Path) -> None:
    out = tmp_path / "out.mig"
    assert _set(NET_PC, out, f"{NET}:virtio.device.mac=52:54:00:ab:cd:ef") == 1
    assert _get(out, f"{NET}:virtio.device.mac") == ["52:54:00:ab:cd:ef"]
    a, b = NET_PC.read_bytes(), out.read_bytes()
    assert len(a) == len(b)
    changed = [i for i, (x, y) in enumerate(zip(a, b)) if x != y]
    assert [a[i:i + 1] + b[i:i + 1] for i in changed] == [b"\x12\xab", b"\x34\xcd", b"\x56\xef"]


def test_a_field_set_twice_takes_the_last_value(tmp_path: Path) -> None:
    out = tmp_path / "twice.mig"
    _set(NET_PC, out, f"{NET}:virtio.status=3", f"{NET}:virtio.status=7")
    assert _get(out, f"{NET}:virtio.status") == ["7"]


def test_setting_a_field_to_its_value_writes_the_same_bytes(tmp_path: Path) -> None:
    out = tmp_path / "same.mig"
    _set(NET_PC, out, f"{NET}:virtio.device.mac=52:54:00:12:34:56", f"{NET}:virtio.status=0", "timer:cpu_ticks_offset=0")
    assert out.read_bytes() == NET_PC.read_bytes()


def _sections(path: Path) -> list[tuple[DeviceState, _Walk]]:
    found = []
    walk = _Walk()
    with open_records(path, descriptions=DEFAULT_REGISTRY, fallback="qemu") as opened:
        for record in opened.records:
            walk.note(record)
            if isinstance(record, DeviceState) and isinstance(record.record, Record):
                found.append((record, walk))
    return found


def _leaf_paths(node: object, steps: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    if isinstance(node, Record):
        return [p for name, value in [*node.fields.items(), *node.subsections.items()]
                for p in _leaf_paths(value, (*steps, name))]
    if isinstance(node, list) and node and isinstance(node[0], Record):
        return _leaf_paths(node[0], (*steps, 0))
    return [steps]


@pytest.mark.parametrize("name", ["pc-7.2-virtio-all-legacy.mig", "pseries-7.2-virtio-all-legacy.mig",
                                  "virt-7.2-virtio-mmio-all.mig", "q35-7.2-virtio-multiqueue.mig",
                                  "pc-2.2-virtio-all.mig", "pc-2.2-virtio-more.mig"])
def test_every_field_set_to_the_value_it_shows_re_encodes_identically(name: str) -> None:
    """Parse and show are inverse on real values, and QEMU's save rules keep an unchanged state as it was."""
    edits = 0
    for state, walk in _sections(CORPUS / name):
        original = encode(state.description, state.record)
        extra = [("virtio", "device_endian"), ("virtio", "guest_features")] if "virtio" in state.record.fields else []
        for steps in [*_leaf_paths(state.record)[:60], *extra]:
            shown = get_field(state, steps, walk.target)
            value = shown.rsplit(" (", 1)[0] if shown.endswith(")") else shown
            edited = edit_section(state, [Assignment(FieldRef(state.idstr, state.instance_id, steps, "t"), value)],
                                  walk.target)
            assert encode(edited.description, edited.record) == original, (state.idstr, steps)
            edits += 1
    assert edits > 100


def test_device_endian_flip_adds_the_subsection_and_swaps_the_serial_config(tmp_path: Path) -> None:
    out, back = tmp_path / "le.mig", tmp_path / "be.mig"
    assert _get(PSERIES, f"{CONSOLE}:virtio.device_endian", f"{CONSOLE}:virtio.device.config_max_nr_ports") == [
        "big (2)", str(DEFAULT_MAX_PORTS << 24)]
    _set(PSERIES, out, f"{CONSOLE}:virtio.device_endian=little")
    assert _get(out, f"{CONSOLE}:virtio.device_endian", f"{CONSOLE}:virtio.device.config_max_nr_ports",
                f"{CONSOLE}:virtio.virtio/device_endian.device_endian") == [
        "little (1)", str(DEFAULT_MAX_PORTS), "little (1)"]
    assert _devices(out)[CONSOLE].device_endian == Endian.LITTLE  # type: ignore[attr-defined]
    _set(out, back, f"{CONSOLE}:virtio.device_endian=big")  # the default again: the subsection goes
    assert back.read_bytes() == PSERIES.read_bytes()


def test_a_subsection_field_that_stands_for_the_model_sets_the_model(tmp_path: Path) -> None:
    """Setting virtio/device_endian's field to the default is setting device_endian: the subsection goes."""
    le, back = tmp_path / "le.mig", tmp_path / "be.mig"
    _set(PSERIES, le, f"{CONSOLE}:virtio.device_endian=little")
    _set(le, back, f"{CONSOLE}:virtio.virtio/device_endian.device_endian=big")
    assert back.read_bytes() == PSERIES.read_bytes()


def test_an_edit_the_save_rules_undo_is_refused(tmp_path: Path) -> None:
    """guest_features_lo is written from the 64-bit guest_features when virtio/64bit_features is on the wire."""
    with pytest.raises(EditError, match="save rules write 0"):
        _set(NET_PC, tmp_path / "x.mig", f"{NET}:virtio.guest_features_lo=1")
    assert not (tmp_path / "x.mig").exists()


def test_num_queues_resizes_the_queue_list(tmp_path: Path) -> None:
    out = tmp_path / "q.mig"
    _set(PSERIES, out, f"{BALLOON}:virtio.num_queues=4")
    device = _devices(out)[BALLOON]
    assert len(device.vqs) == 4 and device.vqs[3].num == device.vqs[0].num  # type: ignore[attr-defined]
    assert _get(out, f"{BALLOON}:virtio.vq[3].num", f"{BALLOON}:virtio.num_queues") == [str(device.vqs[0].num), "4"]  # type: ignore[attr-defined]
    with pytest.raises(EditError, match="out of range: vq has 4 items"):
        _set(out, tmp_path / "r.mig", f"{BALLOON}:virtio.vq[4].num=1")


def test_snapshot_in_snapshot_out(tmp_path: Path) -> None:
    from streams.convert import convert

    snapshot, out = tmp_path / "a.cbor", tmp_path / "b.cbor"
    convert(PSERIES, snapshot, "cbor", descriptions=DEFAULT_REGISTRY)
    _set(snapshot, out, f"{BALLOON}:virtio.device.actual=4096")
    assert out.read_bytes()[:16] == snapshot.read_bytes()[:16]
    assert _get(out, f"{BALLOON}:virtio.device.actual") == ["4096"]


# ------------------------------------------------------------------ the command


@pytest.mark.parametrize("edit, message", [
    (f"{NET}:virtio.device.mca=1", "no field or subsection 'mca'"),
    (f"{NET}:virtio.device.mac=52:54:00", "3 bytes given, the field holds 6"),
    (f"{NET}:virtio.vq[5].num=3", "index [5] is out of range"),
    (f"{NET}:virtio.status=300", "300 does not fit uint8"),
    (f"{NET}:virtio.device_endian=middle", "or one of unknown, little, big"),
    (f"{NET}:virtio.device_endian=0", "little (1) or big (2)"),
    ("0000:00:02.0/virtio-nett:virtio.status=1", "did you mean 0000:00:02.0/virtio-net?"),
    (f"{NET}:virtio.device=1", "is a record"),
    ("timer:cpu_ticks_offset=abc", "'abc' is not an integer"),
    ("virtio.status=1", "expected SECTION:PATH"),
])
def test_the_command_refuses_in_one_line_and_writes_nothing(tmp_path: Path, edit: str, message: str) -> None:
    out = tmp_path / "out.mig"
    result = run_script("vmstate", "edit", NET_PC, out, "--set", edit)
    assert result.returncode == 2, result
    assert message in result.stderr and result.stderr.count("\n") == 1, result.stderr
    assert result.stdout == "" and list(tmp_path.iterdir()) == []


def test_the_command_leaves_an_existing_out_as_it_was_on_refusal(tmp_path: Path) -> None:
    out = tmp_path / "out.mig"
    shutil.copy(NET_PC, out)
    result = run_script("vmstate", "edit", NET_PC, out, "--set", f"{NET}:virtio.status=256")
    assert result.returncode == 2 and out.read_bytes() == NET_PC.read_bytes()


def test_the_command_sets_and_gets(tmp_path: Path) -> None:
    out = tmp_path / "out.mig"
    result = run_script("vmstate", "edit", NET_PC, out, "--set", f"{NET}:virtio.device.mac=52:54:00:ab:cd:ef",
                        "--get", f"{NET}:virtio.device.mac", "--get", f"{NET}:virtio.device_endian")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"{NET}:virtio.device.mac = 52:54:00:ab:cd:ef",
                                          f"{NET}:virtio.device_endian = little (1)"]
    diff = run_script("migration-diff", NET_PC, out)
    assert diff.stdout.splitlines()[2:] == [f"{NET}: virtio.device.mac: 525400123456 -> 525400abcdef"]


@pytest.mark.parametrize("command", ["edit", "convert", "extract"])
def test_what_the_commands_write_follows_the_umask(tmp_path: Path, command: str) -> None:
    """QEMU running as another user must read the stream written for it (umask 022: 0644)."""
    out = tmp_path / ("out" if command == "extract" else "out.mig")
    args = {"edit": ("--set", f"{NET}:virtio.status=1"), "convert": (), "extract": ()}[command]
    old = os.umask(0o022)
    try:
        result = run_script("vmstate", command, NET_PC, out, *args)
    finally:
        os.umask(old)
    assert result.returncode == 0, result.stderr
    expected = 0o755 if command == "extract" else 0o644
    assert stat.S_IMODE(out.stat().st_mode) == expected
    if command == "extract":
        assert {stat.S_IMODE(p.stat().st_mode) for p in out.rglob("*") if p.is_file()} == {0o644}


def test_the_edit_api_follows_queues_added_or_removed_and_sets_status(tmp_path: Path) -> None:
    from devices.virtio.device import VirtIODevice, VirtQueue
    from vmstate.edit import edit_virtio_stream

    def edit(idstr: str, device: VirtIODevice) -> None:
        if idstr == BALLOON:
            device.vqs.append(VirtQueue(num=64))
            device.status = 7
        elif idstr.endswith("/virtio-rng"):
            del device.vqs[:]

    out = tmp_path / "api.mig"
    edit_virtio_stream(PSERIES, out, edit)
    devices = _devices(out)
    balloon = devices[BALLOON]
    assert [q.num for q in balloon.vqs][-1] == 64 and balloon.status == 7  # type: ignore[attr-defined]
    assert _get(out, f"{BALLOON}:virtio.num_queues", "pci@800000020000000:04.0/virtio-rng:virtio.num_queues") == [
        str(len(_devices(PSERIES)[BALLOON].vqs) + 1), "0"]  # type: ignore[attr-defined]


PREFLIGHT = CORPUS.parent / "preflight"


@pytest.mark.parametrize("edit, line", [
    (f"{NET}:virtio.vq[0].last_avail_idx=5", "VQ 0 address 0x0 inconsistent with Host index 0x5"),
    (f"{NET}:virtio.transport.config_vector=9", "Failed to load virtio-net:virtio"),
    (f"{NET}:virtio.device.has_vnet_hdr=1", "virtio-net: saved image requires vnet_hdr=on"),
    (f"{NET}:virtio.transport.pci.config={'00' * 256}", "get_pci_config_device: Bad config data: i=0x0"),
])
def test_an_edit_qemu_would_refuse_is_refused_unless_forced(tmp_path: Path, edit: str, line: str) -> None:
    out = tmp_path / "out.mig"
    refused = run_script("vmstate", "edit", NET_PC, out, "--set", edit)
    assert refused.returncode == 2 and line in refused.stderr and "--force" in refused.stderr, refused.stderr
    assert not out.exists()
    forced = run_script("vmstate", "edit", NET_PC, out, "--set", edit, "--force")
    assert forced.returncode == 0 and out.exists()
    assert "warning: QEMU would refuse" in forced.stderr and line in forced.stderr


def test_features_are_checked_against_a_destination_profile(tmp_path: Path) -> None:
    stream = PREFLIGHT / "streams" / "pc-7.2-net-rng.mig.xz"
    profile = PREFLIGHT / "profiles" / "7.2-pc-7.2-net-rng.json"
    offered = json.loads(profile.read_text())["virtio"][NET]["host_features"]
    missing = next(bit for bit in range(64) if not offered >> bit & 1)
    out = tmp_path / "out.mig"
    ok = run_script("vmstate", "edit", stream, out, "--profile", profile,
                    "--set", f"{NET}:virtio.guest_features={offered & 0xFFFF_FFFF:#x}")
    assert ok.returncode == 0 and ok.stderr == "", ok.stderr
    # without a profile the features the device offers are not in the stream: the command says so
    unchecked = run_script("vmstate", "edit", stream, tmp_path / "self.mig",
                           "--set", f"{NET}:virtio.guest_features={1 << missing:#x}")
    assert unchecked.returncode == 0
    assert unchecked.stderr == f"vmstate: note: not checked: {NET}: the features the device offers (give --profile " \
                               "to check them)\n"
    refused = run_script("vmstate", "edit", stream, tmp_path / "no.mig", "--profile", profile,
                         "--set", f"{NET}:virtio.guest_features={1 << missing:#x}")
    assert refused.returncode == 2 and f"Features {1 << missing:#x} unsupported" in refused.stderr, refused.stderr
    assert not (tmp_path / "no.mig").exists()


def test_a_ports_map_the_destination_does_not_have_is_refused(tmp_path: Path) -> None:
    serial = CORPUS / "pc-7.2-virtio-serial-legacy.mig"
    result = run_script("vmstate", "edit", serial, tmp_path / "out.mig",
                        "--set", "0000:00:02.0/virtio-console:virtio.device.ports_map=[1]")
    assert result.returncode == 2 and "Failed to load virtio-console:virtio" in result.stderr, result.stderr
    assert not (tmp_path / "out.mig").exists()


def test_a_deeply_nested_list_value_is_an_edit_error(tmp_path: Path) -> None:
    with pytest.raises(EditError, match="a list is written as a JSON list"):
        parse_value("[" * 100_000, None, [1, 2], "f")
    with pytest.raises(EditError, match="is not a quoted string"):
        parse_value('"' + "[" * 10, Buffer(size=4, text=True), b"\0" * 4, "t")
