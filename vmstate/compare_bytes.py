"""Where two byte strings first differ: the one comparison every check and report shares."""

from __future__ import annotations

__all__ = ["first_difference"]


def first_difference(a: bytes, b: bytes) -> int | None:
    """The first offset at which ``a`` and ``b`` differ (a length difference counts), None if equal."""
    if a == b:
        return None
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
