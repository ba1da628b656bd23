"""virtio-mem's own part (hw/virtio/virtio-mem.c, ``vmstate_virtio_mem_device``, QEMU 7.2 and 10.0).

First the sanity checks (``VMSTATE_WITH_TMP``: the tmp struct's fields
inline, compared on load with the destination's own properties): address,
region size, block size, NUMA node.  Then the usable region size, the
plugged size, the requested size and the plugged-block bitmap.  The bitmap
has one bit per block of the memory backend (``bitmap_size`` = region size /
block size, set at realize) and travels as ``VMSTATE_BITMAP``: host
``unsigned long`` words, each as be64 (``put_bitmap``).  The stream does not
carry its length, but the sanity checks carry both sizes it follows from.

QEMU 8.2 ("virtio-mem: Support "x-early-migration"", the property on by
default, off in ``hw_compat_8_1``) moves the sanity checks, the plugged size
and the bitmap into a section of their own, ``virtio-mem-device-early``
(:class:`VirtIOMEMEarly`, saved with the early-setup sections before RAM);
the device part then keeps ``usable_region_size`` and ``requested_size``
only (the other fields are ``_TEST`` fields on ``!early_migration``).  So
machine types up to 8.1 (7.2's, under any QEMU) have 7.2's layout and 8.2 on
the short one.  The stream does not carry the property: the section has both
layouts (:data:`VIRTIO_MEM`, :data:`VIRTIO_MEM_EARLY_MIGRATION`), and the
section end picks one.
"""

from __future__ import annotations

from typing import Any

import attrs

from vmstate import field, state, struct
from vmstate.description import Custom, CustomContext, Description, Record
from vmstate.errors import EncodeError, LimitExceededError, MalformedError
from vmstate.kinds import UINT32, UINT64
from vmstate.typed import description_of
from vmstate.wire import ByteReader

from .parts import DescribedPart

__all__ = ["VirtIOMEM", "VirtIOMEMEarly", "VirtIOMEMSanityChecks", "VIRTIO_MEM", "VIRTIO_MEM_EARLY_MIGRATION", "bitmap_words"]

_WORD = 8


def bitmap_words(region_size: int, block_size: int) -> int:
    """How many 64-bit words carry the bitmap of ``region_size / block_size`` blocks."""
    return (region_size // block_size + 63) // 64


@attrs.frozen
class _Bitmap:
    """``VMSTATE_BITMAP`` sized by the sanity checks read just before it."""

    def _words(self, context: CustomContext, offset: int | None) -> int:
        fields = context.scopes[-1]
        checks = fields.get("tmp")  # virtio-mem-device-early keeps the sanity checks as QEMU's tmp struct
        if isinstance(checks, Record):
            fields = checks.fields
        region_size, block_size = fields.get("region_size"), fields.get("block_size")
        if not isinstance(region_size, int) or not isinstance(block_size, int) or block_size <= 0:
            raise MalformedError(
                f"block_size {block_size!r} cannot size the bitmap", offset=offset, path=context.path
            )
        words = bitmap_words(region_size, block_size)
        if words * _WORD > context.limits.max_buffer:
            raise LimitExceededError(
                f"a bitmap of {words} words exceeds limits.max_buffer = {context.limits.max_buffer} bytes",
                offset=offset,
                path=context.path,
            )
        return words

    def decode(self, reader: ByteReader, context: CustomContext) -> list[int]:
        words = self._words(context, reader.offset)
        data = reader.read(words * _WORD)
        return [int.from_bytes(data[i : i + _WORD], "big") for i in range(0, len(data), _WORD)]

    def encode(self, value: Any, context: CustomContext) -> bytes:
        try:
            words = self._words(context, None)
        except MalformedError as error:
            raise EncodeError(error.message, path=context.path) from None
        if not isinstance(value, list) or len(value) != words:
            raise EncodeError(f"the bitmap must be a list of {words} words", path=context.path)
        if not all(isinstance(w, int) and 0 <= w < 1 << 64 for w in value):
            raise EncodeError("bitmap words must be ints in [0, 2**64)", path=context.path)
        return b"".join(w.to_bytes(_WORD, "big") for w in value)

    def describe(self) -> dict[str, Any]:
        return {"layout": "be64 words, (region_size / block_size + 63) // 64 of them; bit n: block n plugged"}


def _not_early(view: Any, version: int) -> bool:
    # virtio_mem_vmstate_field_exists: with early migration these went in virtio-mem-device-early
    return not getattr(view, "early_migration", False)


@state(name="virtio-mem-device", version=1, minimum_version=1)
class VirtIOMEM:
    """The memory device's geometry (checked on load) and what the guest plugged."""

    #: sanity checks (virtio-mem-device/sanity-checks, the tmp struct)
    addr: int = field(UINT64, exists=_not_early)
    region_size: int = field(UINT64, exists=_not_early)
    block_size: int = field(UINT64, exists=_not_early)
    node: int = field(UINT32, exists=_not_early)
    usable_region_size: int = field(UINT64)
    #: plugged bytes
    size: int = field(UINT64, exists=_not_early)
    requested_size: int = field(UINT64)
    #: bit n of word n // 64: block n is plugged
    bitmap: list[int] = field(
        Custom(codec=_Bitmap(), type_name="bitmap"), exists=_not_early, default=attrs.Factory(list)
    )

    def plugged_blocks(self) -> int:
        """How many blocks the bitmap marks plugged."""
        return sum(bin(word).count("1") for word in self.bitmap)


@state(name="virtio-mem-device/sanity-checks", version=0)
class VirtIOMEMSanityChecks:
    """``VirtIOMEMMigSanityChecks``: compared on load with the destination's own properties."""

    addr: int = field(UINT64)
    region_size: int = field(UINT64)
    block_size: int = field(UINT64)
    node: int = field(UINT32)


@state(name="virtio-mem-device-early", version=1, minimum_version=1)
class VirtIOMEMEarly:
    """``vmstate_virtio_mem_device_early``: the sanity checks, the plugged size and the bitmap, before RAM."""

    tmp: VirtIOMEMSanityChecks = field(struct(VirtIOMEMSanityChecks), default=attrs.Factory(VirtIOMEMSanityChecks))
    size: int = field(UINT64)
    bitmap: list[int] = field(Custom(codec=_Bitmap(), type_name="bitmap"), default=attrs.Factory(list))


def _description(_config: dict[str, Any]) -> Description:
    return description_of(VirtIOMEM)


def _early_migration(_common: dict[str, Any]) -> dict[str, Any]:
    return {"early_migration": True}


VIRTIO_MEM = DescribedPart(savevm_name="virtio-mem", version=1, minimum_version=1, description=_description)
#: the device part of a machine type >= 8.2 (x-early-migration): the rest is in virtio-mem-device-early
VIRTIO_MEM_EARLY_MIGRATION = DescribedPart(
    savevm_name="virtio-mem", version=1, minimum_version=1, description=_description, configure=_early_migration
)
