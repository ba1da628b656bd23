"""A mapped-ram block's page table: pages never written read as zero pages (they load as zero)."""

from __future__ import annotations

from vmstate.diff.pages import PageTable, compare_tables, fill_digest, page_digest


def test_unwritten_pages_of_a_mapped_block_equal_zero_pages_and_differ_from_data() -> None:
    plain, mapped = PageTable(), PageTable()
    mapped.absent_is_zero(4096)
    try:
        plain.set(0, fill_digest(0, 4096) * 8 + page_digest(b"x" * 4096) + fill_digest(0, 4096) * 3)
        mapped.set(8, page_digest(b"x" * 4096))  # only the marked page is written
        assert list(compare_tables(plain, mapped)) == []
        mapped.set(10, page_digest(b"y" * 4096))  # page 10 has data on one side, zero on the other
        changed = list(compare_tables(plain, mapped))
        assert [(r.first, r.count, r.kind) for r in changed] == [(10, 1, "changed")]
    finally:
        plain.close()
        mapped.close()


def test_an_unwritten_page_of_a_plain_table_stays_absent() -> None:
    plain, mapped = PageTable(), PageTable()
    mapped.absent_is_zero(4096)
    try:
        mapped.set(0, page_digest(b"z" * 4096))
        assert [(r.first, r.kind) for r in compare_tables(plain, mapped)] == [(0, "only_b")]
    finally:
        plain.close()
        mapped.close()
