"""Issue 12's memory bar for output: a 200 MB body nothing describes, dumped and diffed in < 300 MB.

The input is a real QEMU 7.2 stream with one section added before its EOF
byte: an idstr nothing describes (the stream's vmdesc does not list it
either) whose body is 200 MiB.  The reader holds that body once; ``dump``
writes its hex a chunk at a time and ``migration-diff`` keeps each side's
body on disk and compares the two a chunk at a time.  Peak RSS is measured
as ``RUSAGE_CHILDREN`` of a fresh parent whose only child is the command.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from streams.qemu import Eof, SectionFooter, SectionHeader, SectionType, StreamReader, encode_record
from tests.support.paths import CORPUS

BODY_MIB = 200
IDSTR = "x-unknown-device"
#: the peak RSS allowed (issue 12): the body once, the interpreter, the output buffers
BAR_KIB = 300 * 1024
#: where B's body differs from A's
FLIP = 150 * (1 << 20) + 12345


def _block() -> bytes:
    # no 0x7e (a footer look-alike would end the body early) and no zeros
    return random.Random(12).randbytes(1 << 20).replace(b"\x7e", b"\x7f").replace(b"\0", b"\1")


def _stream(path: Path, flip: int | None = None) -> None:
    """A real 7.2 stream with a ``BODY_MIB`` MiB section of ``IDSTR``; ``flip`` inverts one bit of its body."""
    with open(CORPUS / "pc-7.2-virtio-rng-legacy.mig", "rb") as source:
        records = list(StreamReader(source))
    section = 1 + max(r.section_id for r in records if isinstance(r, SectionHeader))
    block = _block()
    with open(path, "wb") as out:
        for record in records:
            if isinstance(record, Eof):
                out.write(encode_record(SectionHeader(SectionType.FULL, section, IDSTR, 0, 1)))
                for mib in range(BODY_MIB):
                    if flip is not None and mib == flip >> 20:
                        changed = bytearray(block)
                        changed[flip & 0xFFFFF] ^= 1
                        out.write(changed)
                    else:
                        out.write(block)
                out.write(encode_record(SectionFooter(section)))
            out.write(encode_record(record))


def _run(*args: str | Path, stdout: Path) -> tuple[int, int, str]:
    """Exit status, peak RSS (KiB) and stderr of one command, its stdout written to a file."""
    probe = (
        "import resource, subprocess, sys\n"
        "with open(sys.argv[1], 'wb') as out:\n"
        "    r = subprocess.run(sys.argv[2:], stdout=out, stderr=subprocess.PIPE, text=True)\n"
        "sys.stderr.write(r.stderr)\n"
        "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    program, *rest = map(str, args)
    found = shutil.which(program)
    assert found, f"the {program} script is not installed"
    result = subprocess.run([sys.executable, "-c", probe, str(stdout), found, *rest], capture_output=True, text=True)
    returncode, peak = (int(x) for x in result.stdout.split())
    return returncode, peak, result.stderr


@pytest.fixture(scope="module")
def streams(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    directory = tmp_path_factory.mktemp("raw-body")
    a, b = directory / "a.mig", directory / "b.mig"
    _stream(a)
    _stream(b, FLIP)
    return a, b


@pytest.mark.slow
def test_dump_json_writes_a_200mb_raw_body_in_chunks(streams: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "dump.json"
    returncode, peak, stderr = _run("vmstate", "dump", "--json", streams[0], stdout=out)
    assert returncode == 0, stderr
    assert peak < BAR_KIB, f"peak RSS {peak} KiB"
    print(f"peak RSS {peak} KiB")
    block_hex = _block().hex()
    with open(out, "rb") as text:
        data = text.read(1 << 20)
        start = data.index(b'"raw": "') + len(b'"raw": "')
        head = json.loads(data[: data.index(b'"raw": "')].decode() + '"x": 0}]}')
        assert head["sections"][-1]["idstr"] == IDSTR and head["sections"][-1]["size"] == BODY_MIB << 20
        # the whole body's hex, then the rest of the section's entry
        text.seek(start)
        for _ in range(BODY_MIB):
            assert text.read(len(block_hex)) == block_hex.encode()
        assert text.read(12) == b'",\n      "re'


@pytest.mark.slow
def test_dump_text_of_a_200mb_raw_body_stays_under_the_bar(streams: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "dump.txt"
    returncode, peak, stderr = _run("vmstate", "dump", streams[0], stdout=out)
    assert returncode == 0, stderr
    assert peak < BAR_KIB, f"peak RSS {peak} KiB"
    print(f"peak RSS {peak} KiB")
    lines = out.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if f"] {IDSTR} instance 0 v1" in line)
    assert lines[at + 1] == f"  raw: {BODY_MIB << 20} bytes (no description)"


@pytest.mark.slow
def test_migration_diff_compares_two_200mb_raw_bodies_chunk_by_chunk(streams: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "diff.txt"
    returncode, peak, stderr = _run("migration-diff", *streams, stdout=out)
    assert returncode == 1, stderr
    assert peak < BAR_KIB, f"peak RSS {peak} KiB"
    print(f"peak RSS {peak} KiB")
    assert out.read_text().splitlines()[2:] == [
        f"{IDSTR}: (raw body): {BODY_MIB << 20} bytes, first difference at byte {FLIP:#x}"
    ]
    returncode, peak, stderr = _run("migration-diff", streams[0], streams[0], stdout=out)
    assert (returncode, out.read_text().splitlines()[2:]) == (0, ["no differences"]), stderr
    assert peak < BAR_KIB, f"peak RSS {peak} KiB"
    print(f"peak RSS {peak} KiB")
