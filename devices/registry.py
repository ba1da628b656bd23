"""Map section idstrs to the descriptions of our state classes.

A section's idstr is ``<qdev path>/<vmsd name>`` for devices with a bus path
(``0000:00:03.0/virtio-blk``) and the bare vmsd name otherwise (``timer``);
lookups try the whole idstr, then its last component.

Several descriptions may share a vmsd name: a description named
``cpu@x86_64`` answers for ``cpu`` sections, as ``cpu@ppc64`` does; the
section version picks between them, and where version windows overlap (the
same vmsd with fields that only a device property turns on, e.g.
``spapr_pci@pre-2.8``) the reader tries each in turn (``candidates``) and keeps
the one after which the section ends.
"""

from __future__ import annotations

import importlib
from typing import Any, Iterable, Mapping, Sequence

from vmstate.description import Description
from vmstate.lookup import TYPED_SOURCE, LookupFunction
from vmstate.typed import description_of

__all__ = ["Registry", "LazyRegistry", "vmsd_name_of", "SectionLookup"]

#: a function that builds descriptions from the idstr (kept under its old name)
SectionLookup = LookupFunction


def vmsd_name_of(idstr: str) -> str:
    """The vmsd name part of a section idstr."""
    return idstr.rsplit("/", 1)[-1]


class Registry:
    """A set of descriptions, looked up by section idstr and version (a ``vmstate.lookup.DescriptionLookup``)."""

    def __init__(self, state_classes: Iterable[type] = (), lookups: Iterable[SectionLookup] = ()) -> None:
        self._by_name: dict[str, list[Description]] = {}
        self._lookups: list[SectionLookup] = list(lookups)
        for cls in state_classes:
            self.register(cls)

    def register_lookup(self, lookup: SectionLookup) -> None:
        """Add a function that builds descriptions from the idstr (e.g. per transport)."""
        self._lookups.append(lookup)

    def register(self, cls: type) -> None:
        """Add a state class; its description name up to any ``@`` is the key (later ones are tried later)."""
        description = description_of(cls)
        self._by_name.setdefault(description.name.split("@", 1)[0], []).append(description)

    def _key(self, idstr: str) -> str:
        """The key a section's descriptions are under: the whole idstr if it is one, else its vmsd name."""
        return idstr if idstr in self._by_name else vmsd_name_of(idstr)

    def candidates(self, idstr: str, instance_id: int, version: int) -> list[Description]:
        """Every description of ours that loads a section at ``version``, in the order to try them."""
        found = [d for d in self._by_name.get(self._key(idstr), ()) if d.minimum_version <= version <= d.version]
        if found:
            return found
        for lookup in self._lookups:
            one = lookup(idstr, instance_id, version)
            if one is not None:
                return [one]
        return []

    def __call__(self, idstr: str, instance_id: int, version: int) -> Description | None:
        """The first description for a section, or None if none of ours loads it."""
        found = self.candidates(idstr, instance_id, version)
        return found[0] if found else None

    def source_of(self, description: Description) -> str:
        """Every description here is one of our device models: ``typed``."""
        return TYPED_SOURCE

    def named(self, name: str) -> Description | None:
        """The registered description called ``name`` (e.g. ``spapr_pci@pre-2.8``), if any."""
        return next((d for d in self._by_name.get(name.split("@", 1)[0], ()) if d.name == name), None)

    def descriptions(self) -> list[Description]:
        """Every registered description, sorted by name."""
        return sorted((d for group in self._by_name.values() for d in group), key=lambda d: d.name)


class LazyRegistry(Registry):
    """A ``Registry`` whose state classes are imported per vmsd name, when a section or a caller first asks for it.

    ``table`` maps each registry key (a vmsd name) to ``(module:NAME,
    minimum version, version)`` of its state classes in the order to try
    them; a key's classes are imported when a section of a version one of
    them loads asks (an x86 ``cpu`` v12 does not import ppc64's), and what a
    lookup returns is what a ``Registry`` of all of them would return.
    """

    def __init__(self, table: Mapping[str, Sequence[tuple[str, int, int]]], lookups: Iterable[SectionLookup] = ()) -> None:
        super().__init__(lookups=lookups)
        #: key -> its slots, in order: [where, minimum version, version, the description once imported]
        self._pending: dict[str, list[list[Any]]] = {key: [[*slot, None] for slot in slots] for key, slots in table.items()}

    def _load(self, key: str, version: int | None = None) -> None:
        """Import the classes of ``key`` (only those that load ``version``, if given), keeping their order."""
        slots = self._pending.get(key)
        if slots is None:
            return
        for slot in slots:
            if slot[3] is None and (version is None or slot[1] <= version <= slot[2]):
                module, _, name = slot[0].partition(":")
                slot[3] = description_of(getattr(importlib.import_module(module), name))
        self._by_name[key] = [slot[3] for slot in slots if slot[3] is not None]
        if all(slot[3] is not None for slot in slots):
            del self._pending[key]

    def _key(self, idstr: str) -> str:
        return idstr if idstr in self._by_name or idstr in self._pending else vmsd_name_of(idstr)

    def register(self, cls: type) -> None:
        """Add a state class after the ones of ours that share its key."""
        self._load(description_of(cls).name.split("@", 1)[0])
        super().register(cls)

    def candidates(self, idstr: str, instance_id: int, version: int) -> list[Description]:
        self._load(self._key(idstr), version)
        return super().candidates(idstr, instance_id, version)

    def named(self, name: str) -> Description | None:
        self._load(name.split("@", 1)[0])
        return super().named(name)

    def group(self, key: str) -> list[Description]:
        """The descriptions registered under ``key`` (a vmsd name), in the order they are tried."""
        self._load(key)
        return list(self._by_name.get(key, ()))

    def descriptions(self) -> list[Description]:
        for key in list(self._pending):
            self._load(key)
        return super().descriptions()
