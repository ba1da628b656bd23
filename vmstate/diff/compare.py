"""Compare two ``StreamImage``s into a ``DiffReport``.

Sections are matched by (idstr, instance id).  Decoded sections are compared
field by field; sections kept raw byte by byte (a chunk at a time);
iterative sections other than RAM by digest.  RAM is compared page by page
per block and reported as ranges of differing pages.
"""

from __future__ import annotations

from typing import Iterator

import attrs

from vmstate.errors import VMStateError
from vmstate.spill import Bytes, first_difference

from .filters import Filters
from .image import SectionImage, StreamImage
from .pages import PageRange, compare_tables
from .values import FieldChange, compare_trees, tree_paths

__all__ = ["SectionDiff", "RamDiff", "DiffReport", "IncomparableError", "compare_images", "MAX_RANGES"]

#: page ranges listed per RAM block; the counts stay exact beyond it
MAX_RANGES = 1000


@attrs.frozen
class SectionDiff:
    """How one section differs; ``status`` is ``changed``, ``only_a`` or ``only_b``."""

    idstr: str
    instance_id: int
    status: str
    version_a: int | None
    version_b: int | None
    changes: tuple[FieldChange, ...] = ()


@attrs.frozen
class RamDiff:
    """How one RAM block differs."""

    block: str
    status: str
    length_a: int | None
    length_b: int | None
    differing_pages: int
    ranges: tuple[PageRange, ...]
    #: ranges beyond ``MAX_RANGES`` that were counted but not listed
    more_ranges: int
    page_size: int


@attrs.frozen
class DiffReport:
    """Everything that differs between A and B."""

    a: tuple[str, str]
    b: tuple[str, str]
    header: tuple[FieldChange, ...]
    sections: tuple[SectionDiff, ...]
    ram: tuple[RamDiff, ...]
    #: ``--section``/``--ignore`` globs that matched nothing on either side
    unmatched: tuple[str, ...] = ()

    @property
    def identical(self) -> bool:
        return not (self.header or self.sections or self.ram)


def _header(a: StreamImage, b: StreamImage) -> list[FieldChange]:
    changes: list[FieldChange] = []
    if a.file_version != b.file_version:
        changes.append(FieldChange("file_version", "changed", a.file_version, b.file_version))
    if (a.configuration is None) != (b.configuration is None):
        kind = "only_a" if a.configuration is not None else "only_b"
        changes.append(FieldChange("configuration", kind, a.configuration, b.configuration))
    elif a.configuration is not None:
        for change in compare_trees(a.configuration, b.configuration, owner="configuration"):
            changes.append(attrs.evolve(change, path=f"configuration.{change.path}"))
    if a.footers != b.footers:
        changes.append(FieldChange("section_footers", "changed", a.footers, b.footers))
    if a.commands != b.commands:
        changes.append(FieldChange("commands", "changed", len(a.commands), len(b.commands)))
    if a.trailing != b.trailing:
        changes.append(FieldChange("trailing_data", "changed", len(a.trailing), len(b.trailing)))
    return changes


def _raw(a: Bytes, b: Bytes, first: int) -> FieldChange:
    return FieldChange("(raw body)", "changed", {"size": len(a), "first_difference": first},
                       {"size": len(b), "first_difference": first})


def _section_changes(a: SectionImage, b: SectionImage) -> list[FieldChange]:
    changes: list[FieldChange] = []
    if a.version != b.version:
        changes.append(FieldChange("(section version)", "version", a.version, b.version))
    if a.source == b.source == "iterative":
        if a.digest.digest() != b.digest.digest():
            changes.append(FieldChange("(iterative records)", "changed", a.records, b.records))
    elif a.tree is not None and b.tree is not None:
        changes.extend(compare_trees(a.tree, b.tree, owner=a.vmsd_name if a.vmsd_name == b.vmsd_name else None))
    elif a.raw is not None and b.raw is not None:
        first = first_difference(a.raw, b.raw)  # a chunk at a time: a long body is on disk
        if first is not None:
            changes.append(_raw(a.raw, b.raw, first))
    elif a.source != b.source:
        changes.append(FieldChange("(decoded by)", "changed", a.source, b.source))
    return changes


def _sections(a: StreamImage, b: StreamImage, filters: Filters) -> list[SectionDiff]:
    out: list[SectionDiff] = []
    keys = list(a.sections) + [k for k in b.sections if k not in a.sections]
    for key in keys:
        idstr, instance = key
        if not filters.wants_section(idstr):
            continue
        sa, sb = a.sections.get(key), b.sections.get(key)
        if sa is None or sb is None:
            status = "only_b" if sa is None else "only_a"
            out.append(SectionDiff(idstr, instance, status, sa.version if sa else None, sb.version if sb else None))
            continue
        changes = tuple(c for c in _section_changes(sa, sb) if not filters.ignores_path(idstr, c.path))
        if changes:
            out.append(SectionDiff(idstr, instance, "changed", sa.version, sb.version, changes))
    return out


def _ram(a: StreamImage, b: StreamImage, filters: Filters) -> list[RamDiff]:
    out: list[RamDiff] = []
    names = list(a.ram) + [n for n in b.ram if n not in a.ram]
    for name in names:
        if not filters.wants_section(f"ram/{name}"):
            continue
        ba, bb = a.ram.get(name), b.ram.get(name)
        status = "only_b" if ba is None else "only_a" if bb is None else "changed"
        ranges: list[PageRange] = []
        more = differing = 0
        for page_range in compare_tables(ba.table if ba else None, bb.table if bb else None):
            differing += page_range.count
            if len(ranges) < MAX_RANGES:
                ranges.append(page_range)
            else:
                more += 1
        length_a, length_b = (ba.length if ba else None), (bb.length if bb else None)
        if status == "changed" and not differing and length_a == length_b:
            continue
        page_size = a.page_size if ba is not None and ba.pages else b.page_size
        out.append(RamDiff(name, status, length_a, length_b, differing, tuple(ranges), more, page_size))
    return out


class IncomparableError(VMStateError, ValueError):
    """Two readable inputs that cannot be compared as asked (not damage in either: no byte offset)."""


def _check_page_sizes(a: StreamImage, b: StreamImage, filters: Filters) -> None:
    """Refuse to compare RAM page by page when the two sides' pages differ in size.

    Page tables are indexed by page number; with 1 KiB pages on one side
    (aarch64 ``virt-2.8`` and older, hw/arm/virt.c ``minimum_page_bits``) and
    4 KiB on the other, equal numbers are different guest addresses.
    """
    if a.page_size == b.page_size:
        return
    for name, block in a.ram.items():
        other = b.ram.get(name)
        if block.pages and other is not None and other.pages and filters.wants_section(f"ram/{name}"):
            raise IncomparableError(
                f"A has {a.page_size}-byte target pages, B {b.page_size}-byte ones: RAM block {name!r} cannot be"
                " compared page by page (leave RAM out with --ignore 'ram/*')"
            )


def _everything(a: StreamImage, b: StreamImage) -> tuple[list[str], Iterator[tuple[str, str]]]:
    """Every section name and every (section, path) of both sides, for ``Filters.unmatched``."""
    names = [*a.seen, *b.seen, *(f"ram/{n}" for n in a.ram), *(f"ram/{n}" for n in b.ram)]

    def paths() -> Iterator[tuple[str, str]]:
        yield from (("", p) for p in ("file_version", "configuration", "section_footers", "commands", "trailing_data"))
        for image in (a, b):
            if image.configuration is not None:
                yield from (("", f"configuration.{p}") for p in tree_paths(image.configuration))
            for (idstr, _), section in image.sections.items():
                if section.tree is not None:
                    yield from ((idstr, p) for p in tree_paths(section.tree))

    return names, paths()


def compare_images(a: StreamImage, b: StreamImage, filters: Filters | None = None) -> DiffReport:
    """The full report of how B differs from A."""
    filters = filters or Filters()
    _check_page_sizes(a, b, filters)
    header = tuple(c for c in _header(a, b) if not filters.ignores_path("", c.path))
    unmatched = filters.unmatched(*_everything(a, b)) if filters.section_globs or filters.ignore_globs else ()
    return DiffReport(
        (a.path, a.format), (b.path, b.format), header, tuple(_sections(a, b, filters)), tuple(_ram(a, b, filters)),
        unmatched,
    )


