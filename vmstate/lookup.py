"""How a codec finds the descriptions of a section: one typed protocol.

Codecs (``streams``) never know the device models; the caller injects a
*lookup*. Its full form answers three questions about a section (idstr,
instance id, version): every description that may load it, in the order to
try them (several variants of one vmsd, e.g. ``spapr_pci@pre-2.8``); the
first of them; and where a description comes from (``typed`` for our device
models, ``dump`` for one built from a QEMU ``-dump-vmstate`` file). A bare
function ``(idstr, instance_id, version) -> Description | None`` is accepted
everywhere too and made a full lookup by :func:`as_lookup`.
"""

from __future__ import annotations

from typing import Callable, Protocol, Sequence, runtime_checkable

from .description import Description

__all__ = [
    "DescriptionLookup", "LookupFunction", "FunctionLookup", "as_lookup",
    "TYPED_SOURCE", "DUMP_SOURCE", "VMDESC_SOURCE", "RAW_SOURCE", "SOURCES",
]

# Where a decoded section's layout came from (``DeviceState.source``, the ``source`` of reports and dumps).
#: one of our device models
TYPED_SOURCE = "typed"
#: a description built from a QEMU ``-dump-vmstate`` file (``--descriptions``)
DUMP_SOURCE = "dump"
#: the stream's own vmdesc trailer
VMDESC_SOURCE = "vmdesc"
#: nothing described it: the body kept as bytes
RAW_SOURCE = "raw"
SOURCES = (TYPED_SOURCE, DUMP_SOURCE, VMDESC_SOURCE, RAW_SOURCE)

#: the bare form of a lookup: (idstr, instance_id, version) -> description, or None
LookupFunction = Callable[[str, int, int], "Description | None"]


@runtime_checkable
class DescriptionLookup(Protocol):
    """Descriptions for sections, looked up by idstr, instance id and section version."""

    def __call__(self, idstr: str, instance_id: int, version: int) -> Description | None:
        """The first description that loads the section, or None."""
        ...

    def candidates(self, idstr: str, instance_id: int, version: int) -> Sequence[Description]:
        """Every description that may load the section, in the order to try them."""
        ...

    def source_of(self, description: Description) -> str:
        """Where ``description`` comes from (``typed``, ``dump``, ...)."""
        ...


class FunctionLookup:
    """A bare lookup function as a full :class:`DescriptionLookup` (one candidate, source ``typed``)."""

    def __init__(self, function: LookupFunction) -> None:
        self._function = function

    def __call__(self, idstr: str, instance_id: int, version: int) -> Description | None:
        return self._function(idstr, instance_id, version)

    def candidates(self, idstr: str, instance_id: int, version: int) -> list[Description]:
        one = self._function(idstr, instance_id, version)
        return [] if one is None else [one]

    def source_of(self, description: Description) -> str:
        return TYPED_SOURCE


def as_lookup(descriptions: DescriptionLookup | LookupFunction | None) -> DescriptionLookup | None:
    """``descriptions`` as a full lookup (None stays None: nothing is described)."""
    if descriptions is None or isinstance(descriptions, DescriptionLookup):
        return descriptions
    return FunctionLookup(descriptions)
