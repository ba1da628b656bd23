"""The plug-in interface of a fixture format: what it is given and what it returns.

Kept apart from ``fixtures`` (the directory, the ledger and the registry of
formats) so that the built-in formats import only this, and ``fixtures``
imports them: the arrows point one way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, Union

import attrs

from ..lookup import DescriptionLookup as Lookup
from ..lookup import LookupFunction

__all__ = ["DescriptionLookup", "FixtureFormat", "Outcome", "Rewrite"]

#: what a format is given to find descriptions: a lookup or a bare function (``vmstate.lookup``)
DescriptionLookup = Union[Lookup, LookupFunction]


@attrs.frozen(kw_only=True)
class Rewrite:
    """Whether today's code wrote a fixture back identically, and if not where it first differs."""

    identical: bool
    size: int
    first_difference: int | None = None
    #: the section (idstr) or record the first difference falls in
    where: str | None = None
    #: what the writer could not decide from the state and kept as read
    notes: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class Outcome:
    """What a format made of one fixture: its decoding and, if it can write, the rewrite."""

    decoding: Any
    rewrite: Rewrite | None = None


class FixtureFormat(Protocol):
    """A kind of fixture file the dynamic check can load and write back."""

    @property
    def name(self) -> str:
        """Short name for reports, e.g. ``qemu``."""

    @property
    def suffixes(self) -> tuple[str, ...]:
        """File name endings this format claims, e.g. ``(".mig", ".mig.xz")``."""

    def run(self, path: Path, descriptions: DescriptionLookup | None) -> Outcome:
        """Decode ``path`` with today's code and write it back; raise ``VMStateError`` if unreadable."""
