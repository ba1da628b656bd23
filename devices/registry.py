"""Map section idstrs to the descriptions of our state classes.

A section's idstr is ``<qdev path>/<vmsd name>`` for devices with a bus path
(``0000:00:03.0/virtio-blk``) and the bare vmsd name otherwise (``timer``);
lookups try the whole idstr, then its last component.
"""

from __future__ import annotations

from typing import Callable, Iterable

from vmstate.description import Description
from vmstate.typed import description_of

__all__ = ["Registry", "vmsd_name_of", "SectionLookup"]

#: (idstr, instance_id, version) -> description, or None
SectionLookup = Callable[[str, int, int], "Description | None"]


def vmsd_name_of(idstr: str) -> str:
    """The vmsd name part of a section idstr."""
    return idstr.rsplit("/", 1)[-1]


class Registry:
    """A set of descriptions, looked up by section idstr and version."""

    def __init__(self, state_classes: Iterable[type] = (), lookups: Iterable[SectionLookup] = ()) -> None:
        self._by_name: dict[str, Description] = {}
        self._lookups: list[SectionLookup] = list(lookups)
        for cls in state_classes:
            self.register(cls)

    def register_lookup(self, lookup: SectionLookup) -> None:
        """Add a function that builds descriptions from the idstr (e.g. per transport)."""
        self._lookups.append(lookup)

    def register(self, cls: type) -> None:
        """Add a state class; its description name is the key."""
        description = description_of(cls)
        self._by_name[description.name] = description

    def __call__(self, idstr: str, instance_id: int, version: int) -> Description | None:
        """The description for a section, or None if none of ours loads it."""
        description = self._by_name.get(idstr) or self._by_name.get(vmsd_name_of(idstr))
        if description is not None and description.minimum_version <= version <= description.version:
            return description
        for lookup in self._lookups:
            found = lookup(idstr, instance_id, version)
            if found is not None:
                return found
        return None

    def descriptions(self) -> list[Description]:
        """Every registered description, sorted by name."""
        return [self._by_name[name] for name in sorted(self._by_name)]
