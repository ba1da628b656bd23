"""Text from the input is escaped wherever it is printed: error lines, dump, diff, check."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from streams.qemu import StreamReader, StreamWriter
from streams.records import VmDescription
from tests.support.cli import run_script
from tests.support.paths import CORPUS
from vmstate.text import printable, printable_lines

#: a section idstr that would clear the screen and split a line, ending in a vmsd we describe
EVIL_IDSTR = "\x1b[2J\nevil\x9b/timer"
NET = CORPUS / "pc-7.2-virtio-net-legacy.mig"


def _evil_stream(path: Path, runstate: bytes = b"", *, cut_in_timer: bool = False) -> Path:
    """NET with the timer section renamed EVIL_IDSTR and globalstate's run state set to ``runstate``.

    A section header is ``kind, be32 id, u8 length, idstr, be32 instance, be32 version``
    (migration/savevm.c, save_section_header); nothing later refers to offsets,
    so the idstr may change length.
    """
    data = NET.read_bytes()
    timer = data.index(b"\x05timer")
    evil = EVIL_IDSTR.encode("latin-1")
    data = data[:timer] + bytes((len(evil),)) + evil + data[timer + 6:]
    if runstate:
        body = data.index(b"\x0bglobalstate") + 12 + 8  # then be32 size, 100 bytes of run state
        data = data[:body] + len(runstate).to_bytes(4, "big") + runstate.ljust(100, b"\0") + data[body + 104:]
    if cut_in_timer:
        data = data[: timer + 1 + len(evil) + 8 + 10]
    path.write_bytes(data)
    return path


def _has_no_raw_control(text: str) -> bool:
    return all(c == "\n" or c.isprintable() for c in text)


def test_printable_escapes_controls_bidi_and_surrogates() -> None:
    assert printable("plain 0000:00:02.0/virtio-net") == "plain 0000:00:02.0/virtio-net"
    assert printable("a\nb\x1b[2J\x7f\x9b") == "a\\x0ab\\x1b[2J\\x7f\\x9b"
    assert printable("\u202eevil\ud800") == "\\u202eevil\\ud800"
    assert printable("\U000e0001") == "\\U000e0001"
    assert printable_lines("a\x1b\nb") == "a\\x1b\nb"


@given(st.text())
def test_printable_output_is_printable_and_encodable(text: str) -> None:
    out = printable(text)
    assert out.isprintable()
    out.encode("utf-8")  # a lone surrogate would raise here
    if text.isprintable():
        assert out == text


def test_error_line_escapes_the_idstr(tmp_path: Path) -> None:
    stream = _evil_stream(tmp_path / "cut.mig", cut_in_timer=True)
    for args in (("check", stream), ("dump", stream)):
        result = run_script("vmstate", *args)
        assert result.returncode == 2, result.stderr
        (line,) = result.stderr.splitlines()
        assert "in \\x1b[2J\\x0aevil\\x9b/timer" in line and _has_no_raw_control(result.stderr), line
    diff = run_script("migration-diff", stream, stream)
    assert diff.returncode == 2
    (line,) = diff.stderr.splitlines()
    assert line.startswith(f"migration-diff: error: {stream}: at 0x") and "\\x1b[2J\\x0aevil" in line


def test_dump_and_diff_text_escape_names_and_values(tmp_path: Path) -> None:
    a = _evil_stream(tmp_path / "a.mig")
    b = _evil_stream(tmp_path / "b.mig", b"\x1b]0;pwned\x07")
    dump = run_script("vmstate", "dump", b)
    assert dump.returncode == 0, dump.stderr
    assert _has_no_raw_control(dump.stdout)
    assert '  runstate: "\\x1b]0;pwned\\x07"' in dump.stdout.splitlines()
    diff = run_script("migration-diff", a, b)
    assert diff.returncode == 1 and _has_no_raw_control(diff.stdout)
    assert diff.stdout.splitlines()[2:] == [
        'globalstate: runstate: "prelaunch" -> "\\x1b]0;pwned\\x07"',
    ]
    renamed = run_script("migration-diff", NET, a)
    assert renamed.returncode == 1 and _has_no_raw_control(renamed.stdout)
    assert "\\x1b[2J\\x0aevil\\x9b/timer: section only in B (version 2)" in renamed.stdout.splitlines()
    as_json = run_script("migration-diff", "--json", NET, a)
    assert EVIL_IDSTR in [s["section"] for s in json.loads(as_json.stdout)["sections"]]
    assert '[0] \\x1b[2J\\x0aevil\\x9b/timer instance 0 v2 (typed, 24 bytes)' in run_script("vmstate", "dump", a).stdout


#: a q35 stream whose ``mch`` section only the vmdesc decodes (no description of ours)
Q35 = CORPUS / "q35-7.2-virtio-net-legacy.mig"
MCH = "0000:00:00.0/mch"


def _vmdesc_field_renamed(target: Path, name: str) -> Path:
    """Q35 with the first field of its mch vmdesc entry renamed (the stream bytes are unchanged)."""
    def records():  # type: ignore[no-untyped-def]
        with open(Q35, "rb") as source:
            for record in StreamReader(source):
                if isinstance(record, VmDescription):
                    vmdesc = record.parsed()
                    (mch,) = [d for d in vmdesc["devices"] if d["name"] == MCH]
                    mch["fields"][0]["name"] = name
                    record = VmDescription(json.dumps(vmdesc).encode())
                yield record

    with open(target, "wb") as sink:
        StreamWriter(sink).write_all(records())
    return target


def test_a_lone_surrogate_in_a_vmdesc_field_name_is_refused_in_one_escaped_line(tmp_path: Path) -> None:
    stream = _vmdesc_field_renamed(tmp_path / "surrogate.mig", "\ud800\n\x1b[2Jirq")
    for command in (("vmstate", "dump"), ("vmstate", "dump", "--json"), ("migration-diff", NET)):
        result = run_script(*command, stream)
        assert result.returncode == 2 and result.stdout == ""
        [line] = result.stderr.splitlines()
        assert "lone surrogate" in line and "\x1b" not in line and line.isprintable()


def test_control_characters_in_a_vmdesc_field_name_print_escaped(tmp_path: Path) -> None:
    stream = _vmdesc_field_renamed(tmp_path / "control.mig", "\n\x1b[2Jirq")
    dump = run_script("vmstate", "dump", stream)
    assert dump.returncode == 0, dump.stderr
    assert _has_no_raw_control(dump.stdout)
    assert any(line.strip().startswith('"\\x0a\\x1b[2Jirq": ') for line in dump.stdout.splitlines())
    dumped = json.loads(run_script("vmstate", "dump", "--json", stream).stdout)
    (mch,) = [s for s in dumped["sections"] if s["idstr"] == MCH]
    assert next(iter(mch["fields"])) == "\n\x1b[2Jirq"
    diff = run_script("migration-diff", Q35, stream)
    assert diff.returncode == 1, diff.stderr
    assert _has_no_raw_control(diff.stdout)
    assert any(line.startswith(f'{MCH}: "\\x0a\\x1b[2Jirq": only in B') for line in diff.stdout.splitlines())
    report = json.loads(run_script("migration-diff", "--json", Q35, stream).stdout)
    assert '"\n\x1b[2Jirq"' in [c["path"] for s in report["sections"] for c in s["changes"]]
