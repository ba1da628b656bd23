"""The configuration section (migration/savevm.c, vmstate ``configuration``).

It follows the file header on machine types >= 2.4: the machine type name and,
on some targets, subsections (``configuration/target-page-bits`` on aarch64
``virt``; ``configuration/capabilities`` when validatable capabilities such as
x-ignore-shared are on).  It carries no version on the wire and is loaded as
version 0, and no footer follows it.  QEMU >= 9.0's vmdesc describes it in a
``configuration`` entry beside ``devices``, which must agree with it.
"""

from __future__ import annotations

import attrs

from vmstate.description import Description, Field, Record
from vmstate.errors import MalformedError
from vmstate.kinds import UINT32, prefixed, varray, vbuffer

__all__ = ["CONFIGURATION", "CAPABILITIES_NAME", "page_size_of", "capabilities_of", "with_capability", "without_capability", "check_vmdesc_entry"]


def _always(_state: object) -> bool:
    return True


_TARGET_PAGE_BITS = Description(
    name="configuration/target-page-bits",
    version=1,
    minimum_version=1,
    fields=(Field(name="target_page_bits", kind=UINT32),),
    needed=_always,
)

_CAPABILITIES = Description(
    name="configuration/capabilities",
    version=1,
    minimum_version=1,
    fields=(
        Field(name="caps_count", kind=UINT32),
        Field(name="capabilities", kind=varray(prefixed(1, type_name="capability"), "caps_count")),
    ),
    needed=_always,
)

#: QEMU's ``vmstate_configuration``: be32 length then the machine name, no NUL
CONFIGURATION = Description(
    name="configuration",
    version=1,
    fields=(
        Field(name="len", kind=UINT32),
        Field(name="name", kind=vbuffer("len", text=True)),
    ),
    subsections=(_TARGET_PAGE_BITS, _CAPABILITIES),
)


def page_size_of(record: Record) -> int | None:
    """The target page size a configuration announces, if it does."""
    sub = record.subsections.get(_TARGET_PAGE_BITS.name)
    return None if sub is None else 1 << min(int(sub.fields["target_page_bits"]), 63)


def capabilities_of(record: Record) -> frozenset[str]:
    """Names of the migration capabilities a configuration announces."""
    sub = record.subsections.get(_CAPABILITIES.name)
    if sub is None:
        return frozenset()
    return frozenset(bytes(c).decode("latin-1") for c in sub.fields["capabilities"])


CAPABILITIES_NAME = _CAPABILITIES.name


def with_capability(record: Record, name: bytes) -> Record:
    """``record`` announcing capability ``name`` too (QEMU lists the validated ones it has on)."""
    sub = record.subsections.get(CAPABILITIES_NAME)
    have = list(sub.fields["capabilities"]) if sub is not None else []
    if name in have:
        return record
    return _capabilities(record, [*have, name])


def without_capability(record: Record, name: bytes) -> Record:
    """``record`` not announcing ``name`` (without the subsection when nothing is left)."""
    sub = record.subsections.get(CAPABILITIES_NAME)
    if sub is None or name not in sub.fields["capabilities"]:
        return record
    return _capabilities(record, [c for c in sub.fields["capabilities"] if c != name])


def _capabilities(record: Record, capabilities: list[bytes]) -> Record:
    subsections = {k: v for k, v in record.subsections.items() if k != CAPABILITIES_NAME}
    if capabilities:
        subsections[CAPABILITIES_NAME] = Record(1, {"caps_count": len(capabilities), "capabilities": capabilities})
    return attrs.evolve(record, subsections=subsections)


def check_vmdesc_entry(entry: object, record: Record, offset: int | None) -> None:
    """Refuse a vmdesc ``configuration`` entry that does not describe the configuration section as decoded."""

    def bad(what: str) -> MalformedError:
        return MalformedError(f"vmdesc configuration entry {what}", offset=offset, section="vmdesc")

    if not isinstance(entry, dict) or entry.get("vmsd_name") != CONFIGURATION.name:
        raise bad("is not an object with vmsd_name 'configuration'")
    fields = entry.get("fields")
    if not isinstance(fields, list) or not all(isinstance(f, dict) for f in fields):
        raise bad("has no list of field objects")
    sizes = {f.get("name"): f.get("size") for f in fields}
    if sizes.get("name") != len(record.fields["name"]):
        raise bad(f"gives the machine name {sizes.get('name')!r} bytes, the section has {len(record.fields['name'])}")
    subsections = entry.get("subsections", [])
    if not isinstance(subsections, list):
        raise bad("has 'subsections' that is not a list")
    names = [sub.get("vmsd_name") if isinstance(sub, dict) else None for sub in subsections]
    if names != list(record.subsections):
        raise bad(f"lists the subsections {names}, the section has {list(record.subsections)}")
