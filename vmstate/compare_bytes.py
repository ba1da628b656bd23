"""Where two byte strings first differ: the one comparison every check and report shares."""

from __future__ import annotations

__all__ = ["first_difference"]


def first_difference(a: bytes | memoryview, b: bytes | memoryview) -> int | None:
    """The first offset at which ``a`` and ``b`` differ (a length difference counts), None if equal."""
    if isinstance(a, memoryview):  # memoryview == compares item by item: a copy (memcpy) and bytes == are faster
        a = a.tobytes()
    if isinstance(b, memoryview):
        b = b.tobytes()
    if a == b:
        return None
    x, y = memoryview(a), memoryview(b)
    lo, hi = 0, min(len(x), len(y))
    if x[:hi] == y[:hi]:
        return hi
    # the first differing byte of two equal-length prefixes: halve the window (C-speed compares)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if x[lo:mid] == y[lo:mid]:
            lo = mid
        else:
            hi = mid
    return lo
