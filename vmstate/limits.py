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
    #: bytes of the vmdesc JSON trailer
    max_vmdesc: int = 64 << 20
    #: nesting depth of structs and subsections
    max_depth: int = 64
    #: bytes of one RAM page (the target page size)
    max_page_size: int = 1 << 20


DEFAULT_LIMITS = Limits()
