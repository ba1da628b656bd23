"""Field-level comparison of migration streams and snapshots (``migration-diff``)."""

from .compare import DiffReport, RamDiff, SectionDiff, compare_images
from .filters import Filters
from .run import diff_files, read_image
from .values import FieldChange

__all__ = ["DiffReport", "RamDiff", "SectionDiff", "FieldChange", "Filters", "compare_images", "diff_files", "read_image"]
