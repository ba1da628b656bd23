"""migration-diff's comparison: pages, globs, value trees, and whole streams edited on purpose."""

from __future__ import annotations

import copy
import io
from pathlib import Path
from typing import Callable, Iterable, Iterator

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices import DEFAULT_REGISTRY
from streams.qemu import StreamReader, StreamWriter
from streams.records import DeviceState, RamPage, RamZero, SectionFooter, SectionHeader, SectionType, StreamRecord
from tests.support.paths import CORPUS
from tests.support.streams import stream_bytes
from vmstate.diff import Filters, diff_files
from vmstate.diff.filters import glob_to_regex
from vmstate.diff.pages import ABSENT, PageRange, PageTable, compare_tables, fill_digest, page_digest
from vmstate.diff.render import render_text, report_to_json

Transform = Callable[[Iterable[StreamRecord]], Iterator[StreamRecord]]
PAGE = 4096


def rewrite(data: bytes, transform: Transform) -> bytes:
    """Decode a stream, pass its records through ``transform``, encode it again."""
    out = io.BytesIO()
    StreamWriter(out).write_all(transform(StreamReader(io.BytesIO(data), descriptions=DEFAULT_REGISTRY)))
    return out.getvalue()


def idstr_of(data: bytes, vmsd_name: str) -> str:
    """The full idstr of the stream's section with this vmsd name."""
    for record in StreamReader(io.BytesIO(data)):
        if isinstance(record, SectionHeader) and (record.idstr or "").endswith("/" + vmsd_name):
            return record.idstr  # type: ignore[return-value]
    raise AssertionError(f"no {vmsd_name} section")


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# ---------------------------------------------------------------- page tables

pages = st.dictionaries(st.integers(0, 300), st.sampled_from([b"a", b"b", b"c"]), max_size=60)


@settings(max_examples=150, deadline=None)
@given(pages, pages)
def test_page_ranges_cover_exactly_the_differing_pages(side_a: dict[int, bytes], side_b: dict[int, bytes]) -> None:
    tables = []
    for side in (side_a, side_b):
        table = PageTable()
        for index in sorted(side, reverse=True):  # out of order on purpose
            table.set(index, page_digest(side[index] * 8))
        tables.append(table)
    ranges = list(compare_tables(*tables))
    expected = {}
    for index in set(side_a) | set(side_b):
        if side_a.get(index) != side_b.get(index):
            expected[index] = "only_b" if index not in side_a else "only_a" if index not in side_b else "changed"
    found = {r.first + i: r.kind for r in ranges for i in range(r.count)}
    assert found == expected
    for left, right in zip(ranges, ranges[1:]):  # maximal runs, in order
        assert left.first + left.count <= right.first
        assert left.first + left.count < right.first or left.kind != right.kind
    for table in tables:
        table.close()


def test_a_page_sent_twice_keeps_its_last_contents() -> None:
    a, b = PageTable(), PageTable()
    a.set(5, page_digest(b"old"))
    a.set(5, page_digest(b"new"))
    b.set(5, page_digest(b"new"))
    assert list(compare_tables(a, b)) == []
    assert a.read(5, 1) != ABSENT and a.read(4, 1) == ABSENT


def test_zero_records_and_zero_pages_hash_alike() -> None:
    assert fill_digest(0, PAGE) == page_digest(bytes(PAGE))
    assert fill_digest(1, PAGE) != page_digest(bytes(PAGE))


# ---------------------------------------------------------------- globs


def test_globs_treat_brackets_literally_and_stars_across_dots() -> None:
    assert glob_to_regex("virtio.vq[0].*").match("virtio.vq[0].last_avail_idx")
    assert not glob_to_regex("virtio.vq[0].*").match("virtio.vq[1].last_avail_idx")
    assert glob_to_regex("*last_avail_idx").match("virtio.vq[2].last_avail_idx")
    assert not glob_to_regex("vq?").match("vq")
    filters = Filters.from_globs(ignores=["timer:*", "*.used_idx"])
    assert filters.ignores_path("timer", "cpu_ticks_offset")
    assert filters.ignores_path("0000:00:03.0/virtio-net", "virtio.vq[0].used_idx")
    assert not filters.ignores_path("0000:00:03.0/virtio-net", "virtio.vq[0].last_avail_idx")


# ---------------------------------------------------------------- whole streams


def _edit_virtio(idstr_end: str, edit: Callable[[dict], None]) -> Transform:
    def transform(records: Iterable[StreamRecord]) -> Iterator[StreamRecord]:
        for record in records:
            if isinstance(record, DeviceState) and record.idstr.endswith(idstr_end):
                new = copy.deepcopy(record.record)
                edit(new.fields["virtio"].fields)
                record = attrs.evolve(record, record=new)
            yield record

    return transform


def test_a_stream_equals_itself_and_its_compressed_copy(tmp_path: Path) -> None:
    import lzma

    data = stream_bytes(CORPUS / "pc-7.2-virtio-net-legacy.mig")
    plain = write(tmp_path, "a.mig", data)
    packed = write(tmp_path, "a.mig.xz", lzma.compress(data))
    report = diff_files(plain, packed)
    assert report.identical
    assert list(render_text(report))[-1] == "no differences"


def test_field_changes_are_reported_with_their_paths_and_nothing_else(tmp_path: Path) -> None:
    data = stream_bytes(CORPUS / "pc-7.2-virtio-net-legacy.mig")

    def edit(fields: dict) -> None:
        fields["vq"][0].fields["last_avail_idx"] = 17
        fields["device"].fields["mac"] = bytes.fromhex("525400123457")

    a = write(tmp_path, "a.mig", data)
    b = write(tmp_path, "b.mig", rewrite(data, _edit_virtio("virtio-net", edit)))
    net = idstr_of(data, "virtio-net")
    report = diff_files(a, b)
    assert [(s.idstr, s.status) for s in report.sections] == [(net, "changed")]
    changes = {(c.path, c.kind): (c.a, c.b) for c in report.sections[0].changes}
    assert changes == {
        ("virtio.vq[0].last_avail_idx", "changed"): (0, 17),
        ("virtio.device.mac", "changed"): (bytes.fromhex("525400123456"), bytes.fromhex("525400123457")),
    }
    assert not report.ram and not report.header
    lines = list(render_text(report))
    assert f"{net}: virtio.vq[0].last_avail_idx: 0 -> 17" in lines
    # filters: the same diff with both paths ignored is empty
    assert diff_files(a, b, Filters.from_globs(ignores=["*.last_avail_idx", "*:virtio.device.mac"])).identical
    assert diff_files(a, b, Filters.from_globs(sections=["timer"])).identical


def test_a_subsection_on_one_side_only_is_named(tmp_path: Path) -> None:
    from devices.cpu import Endian
    from vmstate.edit import edit_virtio_devices

    source = CORPUS / "pseries-7.2-virtio-all-legacy.mig"
    edited = tmp_path / "le.mig"

    def little(_idstr: str, device) -> None:  # type: ignore[no-untyped-def]
        device.device_endian = Endian.LITTLE

    with open(source, "rb") as src, open(edited, "wb") as dst:
        edit_virtio_devices(src, dst, little)
    report = diff_files(source, edited)
    assert len(report.sections) == 6
    for section in report.sections:
        (change,) = section.changes
        assert (change.path, change.kind) == ("virtio.virtio/device_endian", "subsection_only_b")
        assert change.b["fields"] == {"device_endian": 1}


def test_ram_differences_are_page_ranges_per_block(tmp_path: Path) -> None:
    data = stream_bytes(CORPUS / "pc-7.2-virtio-rng-legacy.mig")
    touched = {0x100000, 0x101000, 0x300000}

    def transform(records: Iterable[StreamRecord]) -> Iterator[StreamRecord]:
        for record in records:
            if isinstance(record, (RamPage, RamZero)) and record.block == "pc.ram" and record.offset in touched:
                record = RamPage(record.block, record.offset, (record.flags & ~0x02) | 0x08, b"\x5a" * PAGE)
            yield record

    a = write(tmp_path, "a.mig", data)
    b = write(tmp_path, "b.mig", rewrite(data, transform))
    report = diff_files(a, b)
    assert not report.sections
    (ram,) = report.ram
    assert (ram.block, ram.differing_pages) == ("pc.ram", 3)
    assert [(r.first * PAGE, r.count, r.kind) for r in ram.ranges] == [(0x100000, 2, "changed"), (0x300000, 1, "changed")]
    out = report_to_json(report)
    assert out["ram"][0]["ranges"][0] == {"first_page": 256, "pages": 2, "kind": "changed", "start": 0x100000, "end": 0x102000}
    assert diff_files(a, b, Filters.from_globs(ignores=["ram/*"])).identical


def test_a_section_on_one_side_only(tmp_path: Path) -> None:
    data = stream_bytes(CORPUS / "pc-7.2-virtio-rng-legacy.mig")

    def drop_rng(records: Iterable[StreamRecord]) -> Iterator[StreamRecord]:
        dropping = None
        for record in records:
            if isinstance(record, SectionHeader) and record.kind == SectionType.FULL:
                dropping = record.section_id if (record.idstr or "").endswith("virtio-rng") else None
            if dropping is None:
                yield record
            elif isinstance(record, SectionFooter):
                dropping = None

    a = write(tmp_path, "a.mig", data)
    b = write(tmp_path, "b.mig", rewrite(data, drop_rng))
    report = diff_files(a, b)
    assert [(s.idstr, s.status, s.version_a, s.version_b) for s in report.sections] == [
        (idstr_of(data, "virtio-rng"), "only_a", 1, None)
    ]
    assert diff_files(b, a).sections[0].status == "only_b"


def test_json_report_shape(tmp_path: Path) -> None:
    data = stream_bytes(CORPUS / "pc-7.2-virtio-net-legacy.mig")
    a = write(tmp_path, "a.mig", data)
    b = write(tmp_path, "b.mig", rewrite(data, _edit_virtio("virtio-net", lambda f: f["vq"][1].fields.update(last_avail_idx=3))))
    out = report_to_json(diff_files(a, b))
    assert set(out) == {"schema", "a", "b", "identical", "header", "sections", "ram"}
    assert out["schema"] == "vmstate-forge/migration-diff/1" and out["identical"] is False
    assert out["sections"] == [{
        "section": idstr_of(data, "virtio-net"), "instance_id": 0, "status": "changed",
        "version": {"a": 11, "b": 11},
        "changes": [{"path": "virtio.vq[1].last_avail_idx", "kind": "changed", "a": 0, "b": 3}],
    }]


@pytest.mark.parametrize("name", ["pc-2.2-virtio-all.mig", "pseries-7.2-virtio-all-legacy.mig", "virt-7.2-virtio-mmio-all.mig"])
def test_old_layout_ppc64_and_aarch64_streams_compare(name: str, tmp_path: Path) -> None:
    """Streams QEMU's analyzer cannot read still diff, section by section."""
    data = stream_bytes(CORPUS / name)
    a = write(tmp_path, "a.mig", data)
    assert diff_files(a, a).identical
    b = write(tmp_path, "b.mig", rewrite(data, _edit_virtio("virtio-net", lambda f: f.update(isr=1))))
    (section,) = diff_files(a, b).sections
    assert [(c.path, c.b) for c in section.changes] == [("virtio.isr", 1)]


def _record(**fields: object) -> dict:
    return {"version": 1, "fields": fields, "subsections": {}}


def test_an_item_inserted_into_a_list_is_one_change_not_a_cascade() -> None:
    from vmstate.diff.values import compare_trees

    ports = [_record(id=n) for n in (1, 2, 3)]
    grown = [ports[0], _record(id=9), ports[1], ports[2]]
    (change,) = compare_trees(_record(ports=ports), _record(ports=grown))
    assert (change.path, change.kind, change.b) == ("ports[1]", "only_b", _record(id=9))
    (change,) = compare_trees(_record(x=[1, 2, 3]), _record(x=[1, 3]))
    assert (change.path, change.kind, change.a) == ("x[1]", "only_a", 2)
    # an item equal to the others added or removed (DeepDiff sees only a move): the tail is the change
    queue = _record(num=128)
    (change,) = compare_trees(_record(vq=[queue] * 3), _record(vq=[queue] * 4))
    assert (change.path, change.kind, change.b) == ("vq[3]", "only_b", queue)
    (change,) = compare_trees(_record(vq=[queue] * 2), _record(vq=[queue]))
    assert (change.path, change.kind, change.a) == ("vq[1]", "only_a", queue)
    # equal lengths: element by element, in wire order
    changes = compare_trees(_record(x=[1, 2, 3], y=0), _record(x=[1, 5, 6], y=1))
    assert [(c.path, c.a, c.b) for c in changes] == [("x[1]", 2, 5), ("x[2]", 3, 6), ("y", 0, 1)]


@pytest.mark.parametrize("codec", ["msgpack", "cbor", "json"])
def test_snapshots_in_any_codec_diff_like_the_streams_they_hold(tmp_path: Path, codec: str) -> None:
    from streams.snapshots import stream_to_snapshot

    examples = CORPUS.parent / "examples"
    before, after = examples / "pc-net-balloon-before.mig.xz", examples / "pc-net-balloon-after.mig.xz"
    snapshot = tmp_path / f"after.{codec}"
    stream_to_snapshot(after, snapshot, codec, descriptions=DEFAULT_REGISTRY)
    expected = diff_files(before, after)
    mixed = diff_files(before, snapshot)
    assert mixed.b == (str(snapshot), codec)
    assert (mixed.sections, mixed.ram, mixed.header) == (expected.sections, expected.ram, expected.header)
    assert len(mixed.sections) == 2
    assert diff_files(snapshot, after).identical


def test_a_page_at_the_far_end_of_a_huge_block_costs_no_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = PageTable(), PageTable()
    far = (1 << 32) - 1  # the last page of a 16 TiB block
    a.set(0, page_digest(b"x"))
    b.set(0, page_digest(b"x"))
    b.set(far, page_digest(b"y"))
    reads: list[int] = []
    original = PageTable.read
    monkeypatch.setattr(PageTable, "read", lambda self, start, count: reads.append(start) or original(self, start, count))
    assert list(compare_tables(a, b)) == [PageRange(far, 1, "only_b")]
    assert len(reads) == 4  # the first chunk and the last one, on each side: the holes are skipped
    a.close()
    b.close()


def test_pages_beyond_what_the_diff_tracks_are_a_typed_error() -> None:
    from vmstate.diff.pages import MAX_PAGES
    from vmstate.errors import LimitExceededError

    table = PageTable()
    with pytest.raises(LimitExceededError, match="beyond"):
        table.set(MAX_PAGES, page_digest(b"z"))
    table.close()


def test_an_htab_section_sent_whole_is_a_typed_error_not_a_traceback(tmp_path: Path) -> None:
    """Fuzz seed 41, input 478: pseries' spapr/htab section START turned FULL put HTAB records in a non-iterative section."""
    from vmstate.errors import VMStateError

    data = bytearray((CORPUS / "pseries-2.2-virtio-all.mig").read_bytes())
    at = 115  # the START header of section 22, spapr/htab
    assert data[at] == SectionType.START.value and data[at + 5:at + 5 + 11] == b"\nspapr/htab"
    data[at] = SectionType.FULL.value
    hostile = tmp_path / "htab-full.mig"
    hostile.write_bytes(bytes(data))
    with pytest.raises(VMStateError, match="PART for section id 22, which was never started"):
        diff_files(hostile, CORPUS / "pseries-2.2-virtio-all.mig")
