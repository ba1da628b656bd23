"""Named limits checked before anything sized by the input is allocated."""

from __future__ import annotations

import attrs

__all__ = ["Limits", "DEFAULT_LIMITS"]


@attrs.frozen(kw_only=True)
class Limits:
    """Upper bounds for lengths and counts read from untrusted input.

    Every check that fails raises ``LimitExceededError`` naming the limit.
    """

    #: bytes in one buffer field (a VBUFFER, a length-prefixed string)
    max_buffer: int = 64 << 20
    #: elements in one variable-length array
    max_array_count: int = 1 << 20
    #: bytes in one non-RAM section body that has to be held to be decoded
    max_section_body: int = 256 << 20
    #: bytes of the vmdesc JSON trailer (QEMU 7.2's for a pc VM: ~100 KB, ~6 KB per vCPU)
    max_vmdesc: int = 16 << 20
    #: JSON values in the vmdesc, counted before parsing (~7,000 for a pc VM, ~400 per x86 vCPU; each costs up to ~130 bytes parsed)
    max_vmdesc_items: int = 500_000
    #: nesting of JSON arrays and objects in the vmdesc (13 for a pc VM; three per level of struct nesting)
    max_vmdesc_depth: int = 192
    #: nesting depth of structs and subsections
    max_depth: int = 64
    #: bytes of one RAM page (the target page size)
    max_page_size: int = 1 << 20


DEFAULT_LIMITS = Limits()
