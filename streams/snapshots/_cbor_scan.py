"""Find where one CBOR data item ends and how many values it holds, without building it.

cbor2 bounds nesting but not how many values an item holds: an empty
array is one byte, its Python list 56, so a 65 MB item of them costs GBs.
``ItemScanner`` walks the item's heads (RFC 8949 section 3: major type in
the top 3 bits, argument in the low 5 and up to 8 bytes after), skipping
string contents, counting every value, and hands back the item's bytes
only once both its size and its count are known to be within budget.
"""

from __future__ import annotations

from vmstate.errors import LimitExceededError, MalformedError, TruncatedError

from ._codec import ObjectCounter
from ._window import ContentWindow

__all__ = ["ItemScanner"]

_READ = 1 << 16
#: bytes after the initial byte that hold the argument, by its low 5 bits (28-30 are reserved)
_ARGUMENT_BYTES = {24: 1, 25: 2, 26: 4, 27: 8}


class ItemScanner:
    """Split a window's bytes into CBOR data items, each checked against a byte and a value budget."""

    def __init__(self, window: ContentWindow, budget: int, counter: ObjectCounter) -> None:
        self._window = window
        self._budget = budget
        self._counter = counter
        self._buffer = bytearray()
        self._base = window.tell()  # file offset of _buffer[0], where the next item starts

    def at_end(self) -> bool:
        """True when every byte of the window has been handed out."""
        return not self._buffer and self._window.at_end()

    def _fill(self, end: int) -> None:
        """Make ``_buffer[:end]`` available, within the item's byte budget."""
        while len(self._buffer) < end:
            if end > self._budget:
                raise LimitExceededError(
                    f"a CBOR item exceeds the {self._budget}-byte item limit (limits.max_buffer)", offset=self._base
                )
            more = self._window.read(max(_READ, min(end, self._budget) - len(self._buffer)))
            if not more:
                raise TruncatedError("the items end inside a CBOR item", offset=self._base)
            self._buffer += more

    def next_item(self) -> tuple[int, bytes]:
        """The file offset and the bytes of the next item."""
        buffer, counter = self._buffer, self._counter
        budget = counter.budget
        position, pending, count = 0, 1, 0
        size = len(buffer)
        # count + pending changes only at a container's head: the value budget is checked there
        while pending:
            pending -= 1
            count += 1
            if position + 9 > size:  # room for the longest head
                self._fill(position + 1)
                size = len(buffer)
            head = buffer[position]
            info = head & 0x1F
            if info < 24:
                argument = info
                position += 1
            elif info < 28:
                width = _ARGUMENT_BYTES[info]
                if position + 1 + width > size:
                    self._fill(position + 1 + width)
                    size = len(buffer)
                argument = int.from_bytes(buffer[position + 1 : position + 1 + width], "big")
                position += 1 + width
            else:
                # indefinite lengths and breaks are refused (as cbor2 with allow_indefinite=False); 28-30 are reserved
                raise MalformedError(f"not valid CBOR: initial byte {head:#04x} at {self._base + position:#x}",
                                     offset=self._base)
            major = head >> 5
            if major < 2 or major == 7:
                continue
            if major < 4:  # a byte or text string: skip its contents
                position += argument
                if position > size:
                    self._fill(position)
                    size = len(buffer)
                continue
            pending += argument if major == 4 else 2 * argument if major == 5 else 1
            if count + pending > budget:
                raise counter.exceeded(self._base)
        counter.count = count
        offset, item = self._base, bytes(buffer[:position])
        del buffer[:position]
        self._base += position
        return offset, item
