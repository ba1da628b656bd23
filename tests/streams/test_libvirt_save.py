"""libvirt save images made by real ``virsh save`` (compat_fixtures/generate_libvirt.py), in every format libvirt 9.0 writes."""

from __future__ import annotations

import lzma
import struct
from functools import cache
from pathlib import Path

import pytest

from compat_fixtures.generate_libvirt import DOMAIN, FORMATS
from devices import DEFAULT_REGISTRY
from streams.files import open_stream, open_stream_pair
from streams.libvirt_save import HEADER_SIZE, read_header
from streams.qemu import check_stream
from tests.support.cli import run_script
from tests.support.paths import ROOT
from vmstate.errors import MalformedError, TruncatedError, UnsupportedError

FIXTURES = ROOT / "compat_fixtures" / "libvirt"


@cache
def image(name: str) -> bytes:
    return lzma.decompress((FIXTURES / f"pc-7.2-{name}.save.xz").read_bytes())


def _written(tmp_path: Path, data: bytes, name: str = "image.save") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("name", FORMATS)
def test_every_format_holds_a_stream_that_reencodes_identically(tmp_path: Path, name: str) -> None:
    path = _written(tmp_path, image(name))
    with open(path, "rb") as raw:
        header = read_header(raw)
    assert (header.format_name, header.domain_name, header.machine) == (name, DOMAIN, "pc-i440fx-7.2")
    assert header.cookie is not None and header.cookie.startswith("<cookie>") and not header.was_running
    with open_stream_pair(path) as (source, original):
        report = check_stream(source, original, descriptions=DEFAULT_REGISTRY)
    assert report.identical and report.raw_bytes == 0 and not report.unnamed
    assert {s.idstr for s in report.sections} >= {"0000:00:02.0/virtio-net", "0000:00:03.0/virtio-balloon", "slirp"}


def test_a_raw_image_streams_from_right_after_its_xml(tmp_path: Path) -> None:
    data = image("raw")
    path = _written(tmp_path, data)
    with open(path, "rb") as raw:
        start = read_header(raw).stream_offset
    assert data[start:start + 8] == b"QEVM\x00\x00\x00\x03"
    with open_stream(path) as stream:
        assert stream.read() == data[start:]


def test_describe_shows_the_header_and_the_domain(tmp_path: Path) -> None:
    path = _written(tmp_path, image("gzip"))
    result = run_script("vmstate", "describe", path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1] == f"  domain {DOMAIN}, machine pc-i440fx-7.2, was paused"
    assert "format gzip (1)" in result.stdout


def test_migration_diff_between_save_images_and_a_plain_stream(tmp_path: Path) -> None:
    raw, xz = _written(tmp_path, image("raw"), "a.save"), _written(tmp_path, image("xz"), "b.save")
    result = run_script("migration-diff", raw, xz)
    assert result.returncode == 1, result.stderr
    assert any(line.startswith("0000:00:02.0/virtio-net: virtio.device.mac: ") for line in result.stdout.splitlines())
    plain = tmp_path / "a.mig"
    with open_stream(raw) as stream:
        plain.write_bytes(stream.read())
    same = run_script("migration-diff", raw, plain)
    assert (same.returncode, same.stdout.splitlines()[2:]) == (0, ["no differences"]), same.stderr


def _patched(offset: int, value: bytes, name: str = "raw") -> bytes:
    data = bytearray(image(name))
    data[offset:offset + len(value)] = value
    return bytes(data)


@pytest.mark.parametrize(("data", "error", "problem"), [
    (image("raw")[:60], TruncatedError, "header is 92 bytes"),
    (_patched(20, struct.pack("<I", 1 << 30)), MalformedError, "data_len 1073741824 is over"),
    (_patched(16, struct.pack("<I", 3)), UnsupportedError, "version 3"),
    (_patched(28, struct.pack("<I", 4)), UnsupportedError, "format lzop"),
    (_patched(28, struct.pack("<I", 77)), UnsupportedError, "format unknown (77)"),
    (_patched(32, struct.pack("<I", 5)), MalformedError, "cookieOffset 5 is not inside"),
    (_patched(0, b"LibvirtQemudPart"), MalformedError, "unfinished libvirt save image"),
    (image("raw")[:HEADER_SIZE + 100], TruncatedError, "data_len says 66916 bytes"),
], ids=["short-header", "data-len", "version", "lzop", "format-77", "cookie-offset", "partial", "short-xml"])
def test_hostile_headers_are_typed_errors(tmp_path: Path, data: bytes, error: type, problem: str) -> None:
    path = _written(tmp_path, data)
    with pytest.raises(error, match=problem.replace("(", r"\(").replace(")", r"\)")):
        open_stream(path).close()
    result = run_script("vmstate", "check", path)
    assert result.returncode == 2 and problem in result.stderr and "Traceback" not in result.stderr


def test_a_header_in_the_other_byte_order_is_read(tmp_path: Path) -> None:
    data = bytearray(image("raw"))
    fields = struct.unpack_from("<5I", data, 16)
    struct.pack_into(">5I", data, 16, *fields)
    path = _written(tmp_path, bytes(data))
    with open(path, "rb") as raw:
        header = read_header(raw)
    assert header.byte_order == "big" and header.data_len == fields[1]
    with open_stream_pair(path) as (source, original):
        assert check_stream(source, original, descriptions=DEFAULT_REGISTRY).identical


def test_xml_without_its_nul_is_malformed(tmp_path: Path) -> None:
    with open(_written(tmp_path, image("raw")), "rb") as raw:
        header = read_header(raw)
    data = bytearray(image("raw"))
    region = slice(HEADER_SIZE, HEADER_SIZE + header.data_len)
    data[region] = bytes(data[region]).replace(b"\0", b" ")
    with pytest.raises(MalformedError, match="not NUL-terminated"):
        open_stream(_written(tmp_path, bytes(data), "nonul.save"))
