"""Errors of the compatibility checks, under the project's one root ``VMStateError``."""

from __future__ import annotations

from ..errors import VMStateError

__all__ = ["CompatError", "FixtureError", "ImmutableFixtureError", "SchemaFormatError"]


class CompatError(VMStateError):
    """A compatibility check cannot run as asked (a caller or setup mistake)."""


class SchemaFormatError(CompatError, ValueError):
    """A schema file is neither our export nor QEMU's ``-dump-vmstate`` JSON."""


class FixtureError(CompatError):
    """A fixture directory is incomplete: a missing golden, an unreadable ledger."""


class ImmutableFixtureError(FixtureError):
    """Something would rewrite or delete a recorded fixture; they are never changed."""
