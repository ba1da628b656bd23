"""Field-level comparison of migration streams and snapshots (``migration-diff``).

The names below are imported when first used (``vmstate._lazy``), so that
``vmstate.diff.cli`` (and ``vmstate --help``) start without the comparison.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vmstate import _lazy

if TYPE_CHECKING:
    from .compare import DiffReport, RamDiff, SectionDiff, compare_images
    from .filters import Filters
    from .run import diff_files, read_image
    from .values import FieldChange

_NAMES = _lazy.exports({
    ".compare": ("DiffReport", "RamDiff", "SectionDiff", "compare_images"),
    ".values": ("FieldChange",),
    ".filters": ("Filters",),
    ".run": ("diff_files", "read_image"),
})

__all__ = list(_NAMES)


def __getattr__(name: str) -> Any:
    return _lazy.load(__name__, _NAMES, name)
