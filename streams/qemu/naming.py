"""How much of a device section was named, and when not naming it is a failure.

Three grades, from the reader's records alone:

* **named**: bytes read into fields with a known layout (our descriptions,
  or the vmdesc's integers, booleans, structs and plain byte buffers);
* **opaque**: bytes the vmdesc names only as one field of a custom info
  whose inner layout it does not give (``virtio``, ``scsi-requests``, ...):
  the field has a name, its contents do not;
* **raw**: bytes nothing described (``RawBody``).

A section is *unnamed* (a failure, not just a gap in our coverage) when a
description of ours exists but did not decode it and what took over left
bytes unnamed (the raw scan, or a vmdesc with opaque fields), or when it
holds a ``virtio`` field the vmdesc shows only as an opaque blob: every
virtio device must decode field by field.  A vmdesc that lays out every
field of a section our description did not fit is a fallback, reported as
such, not a failure.
"""

from __future__ import annotations

from streams.records import DeviceState, RawBody
from vmstate.description import Buffer, Description, Record, Struct
from vmstate.lookup import TYPED_SOURCE

__all__ = ["PLAIN_VMDESC_TYPES", "naming", "opaque_bytes", "unnamed_reason"]

#: vmdesc field types whose bytes are one plain value or byte array (QEMU's VMStateInfo names)
PLAIN_VMDESC_TYPES = frozenset(
    {
        "buffer", "unused_buffer", "pci config", "pci irq state", "timer", "uint8 equal",
        "cpsr", "fpscr", "powered_off", "fpr", "avr", "vsr", "cpu/altivec/vscr", "slbe",
        "float64", "CPU_Double_U", "fpreg", "bitmap",
    }
)
#: the custom info of a virtio device's whole state (hw/virtio/virtio.c, ``virtio_vmstate_info``)
_VIRTIO_INFO = "virtio"


def _opaque(description: Description, record: Record) -> tuple[int, bool]:
    """(opaque bytes, holds a virtio blob) of a vmdesc-built description's record."""
    total, virtio = 0, False
    parts = [(description, record)]
    while parts:
        desc, rec = parts.pop()
        for field in desc.fields:
            kind, value = field.kind, rec.fields.get(field.name)
            values = value if isinstance(value, list) else [value]
            if isinstance(kind, Buffer) and kind.type_name not in PLAIN_VMDESC_TYPES:
                total += sum(len(v) for v in values if isinstance(v, (bytes, bytearray)))
                virtio = virtio or kind.type_name == _VIRTIO_INFO
            elif isinstance(kind, Struct):
                parts.extend((kind.description, v) for v in values if isinstance(v, Record))
            element = getattr(kind, "element", None)
            if isinstance(element, Buffer) and element.type_name not in PLAIN_VMDESC_TYPES:
                total += sum(len(v) for v in values if isinstance(v, (bytes, bytearray)))
                virtio = virtio or element.type_name == _VIRTIO_INFO
            elif isinstance(element, Struct):
                parts.extend((element.description, v) for v in values if isinstance(v, Record))
        for name, sub in rec.subsections.items():
            sub_description = desc.subsection(name)
            if sub_description is not None:
                parts.append((sub_description, sub))
    return total, virtio


def naming(record: DeviceState | RawBody) -> tuple[int, str | None]:
    """(opaque bytes, why the section is NOT NAMED or None) of a device section, in one walk."""
    if isinstance(record, RawBody):
        # ours gave way and nothing else named it; a user's -dump-vmstate refusing is not our failure
        return 0, (record.reason if record.failed_source == TYPED_SOURCE else None)
    if record.source == TYPED_SOURCE:
        return 0, None
    opaque, virtio = _opaque(record.description, record.record)
    if record.fallback is not None and opaque:
        return opaque, f"our description did not fit, the {record.source} decoded it with {opaque} opaque bytes: {record.fallback}"
    if virtio:
        return opaque, f"virtio state only as an opaque {record.source} blob (no description of ours for {record.description.name!r})"
    return opaque, None


def opaque_bytes(state: DeviceState) -> int:
    """Bytes of a decoded section held in fields of an unknown inner layout (0 for our descriptions)."""
    return naming(state)[0]


def unnamed_reason(record: DeviceState | RawBody) -> str | None:
    """Why a section that should decode field by field did not, or None if nothing failed."""
    return naming(record)[1]
