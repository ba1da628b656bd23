"""The old name of ``streams.snapshots`` (and of ``streams.convert.convert``): every public name still imports from here."""

from streams.convert import convert
from streams.snapshots import *  # noqa: F403 (its __all__: every public name)
from streams.snapshots import __all__ as _snapshot_names

__all__ = [*_snapshot_names, "convert"]
