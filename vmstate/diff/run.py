"""Read both sides and compare them: the whole of ``migration-diff`` without the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable, Iterator

from streams.records import StreamRecord

from .compare import DiffReport, compare_images
from .filters import Filters
from .image import StreamImage, collect
from .sources import Source, open_source

__all__ = ["diff_files", "read_image", "Progress"]

#: called with (bytes read so far of this input, its size or None, whether it is finished)
Progress = Callable[[int, "int | None", bool], None]
_PROGRESS_EVERY = 2048


def _watched(source: Source, progress: Progress | None) -> Iterable[StreamRecord]:
    if progress is None:
        return source.records

    def records() -> Iterator[StreamRecord]:
        for n, record in enumerate(source.records):
            if n % _PROGRESS_EVERY == 0:
                progress(source.position() or 0, source.size, False)
            yield record
        progress(source.position() or 0, source.size, True)

    return records()


def read_image(path: str | Path, filters: Filters | None = None, progress: Progress | None = None) -> StreamImage:
    """Read one input (stream or snapshot) into a ``StreamImage``."""
    filters = filters or Filters()
    with open_source(path) as source:
        return collect(
            str(path), source.format, _watched(source, progress), page_size=source.page_size,
            wanted=filters.wants_section, offset=source.position,
        )


def diff_files(
    a: str | Path, b: str | Path, filters: Filters | None = None, progress: Progress | None = None
) -> DiffReport:
    """Compare two inputs; page tables live on disk only while this runs."""
    image_a = read_image(a, filters, progress)
    try:
        image_b = read_image(b, filters, progress)
        try:
            return compare_images(image_a, image_b, filters)
        finally:
            image_b.close()
    finally:
        image_a.close()
