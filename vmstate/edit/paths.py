"""``SECTION:PATH=VALUE``: which field of which section an edit names, and how to reach it in a record.

SECTION is a section's idstr as ``migration-diff`` prints it
(``0000:00:02.0/virtio-net``; ``cpu#1`` for instance 1).  PATH is the field
path it prints: steps joined by ``.``, each a field or subsection name
(``virtio/device_endian``), quoted when the name itself holds a dot or a
bracket (``"env.regs"[3]``), then ``[N]`` list indices.  An idstr may hold
colons, a path never does (outside quotes), so the last colon splits them.
"""

from __future__ import annotations

from typing import Any

import attrs

from ..description import Record
from ..errors import EditError, PathItem, format_path

__all__ = ["FieldRef", "parse_path", "parse_ref", "split_assignment", "get_at", "set_at", "show_path"]

Steps = tuple[PathItem, ...]

_STEP_END = '.[]"'


@attrs.frozen
class FieldRef:
    """One field of one section, as an edit or ``--get`` names it."""

    idstr: str
    instance_id: int
    steps: Steps
    #: as the user wrote it, for messages
    text: str

    @property
    def section(self) -> str:
        """The section as ``migration-diff`` names it."""
        return self.idstr if self.instance_id == 0 else f"{self.idstr}#{self.instance_id}"


def _outside_quotes(text: str) -> list[int]:
    """The indices of ``text``'s characters that are not inside a double-quoted name."""
    positions, quoted, escaped = [], False, False
    for i, char in enumerate(text):
        if quoted:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                quoted = False
            continue
        if char == '"':
            quoted = True
        else:
            positions.append(i)
    if quoted:
        raise EditError(f"{text!r}: a quoted name is not closed")
    return positions


def split_assignment(text: str) -> tuple[str, str]:
    """``SECTION:PATH=VALUE`` as (``SECTION:PATH``, ``VALUE``)."""
    equals = [i for i in _outside_quotes(text) if text[i] == "="]
    if not equals:
        raise EditError(f"{text!r}: expected SECTION:PATH=VALUE")
    return text[: equals[0]], text[equals[0] + 1:]


def parse_ref(text: str) -> FieldRef:
    """``SECTION:PATH`` as a ``FieldRef``."""
    colons = [i for i in _outside_quotes(text) if text[i] == ":"]
    if not colons or colons[-1] == 0:
        raise EditError(f"{text!r}: expected SECTION:PATH (the section's idstr as migration-diff prints it, a colon, "
                        "the field path)")
    section, path = text[: colons[-1]], text[colons[-1] + 1:]
    idstr, instance = section, 0
    name, hash_sign, number = section.rpartition("#")
    if hash_sign and number.isdigit() and name:
        idstr, instance = name, int(number)
    return FieldRef(idstr=idstr, instance_id=instance, steps=parse_path(path), text=text)


def parse_path(text: str) -> Steps:
    """A field path as its steps: names and list indices."""
    steps: list[PathItem] = []
    i, n = 0, len(text)
    if not text:
        raise EditError("the field path is empty")
    while True:
        if i < n and text[i] == '"':
            name, i = _quoted(text, i)
        else:
            start = i
            while i < n and text[i] not in _STEP_END:
                i += 1
            name = text[start:i]
            if not name:
                raise EditError(f"{text!r}: an empty step at character {start}")
        steps.append(name)
        while i < n and text[i] == "[":
            close = text.find("]", i)
            digits = text[i + 1: close] if close > 0 else ""
            if not digits.isdigit():
                raise EditError(f"{text!r}: a list index is a number in brackets, as in vq[2]")
            steps.append(int(digits))
            i = close + 1
        if i == n:
            return tuple(steps)
        if text[i] != ".":
            raise EditError(f"{text!r}: expected '.' or '[' at character {i}")
        i += 1


def _quoted(text: str, start: int) -> tuple[str, int]:
    out, i = [], start + 1
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        if char == '"':
            return "".join(out), i + 1
        out.append(char)
        i += 1
    raise EditError(f"{text!r}: a quoted name is not closed")


def show_path(steps: Steps) -> str:
    """Steps as ``migration-diff`` prints them (names holding dots or brackets quoted)."""
    from ..display import path_step

    return format_path(path_step(s) if isinstance(s, str) else s for s in steps)


def _names(node: Record) -> str:
    names = [*node.fields, *node.subsections]
    shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
    return shown or "nothing"


def _step(node: Any, step: PathItem, done: Steps) -> Any:
    where = show_path(done) or "the section"
    if isinstance(step, int):
        if not isinstance(node, list):
            raise EditError(f"{where} is not a list: no index [{step}]", path=done)
        if step >= len(node):
            raise EditError(f"index [{step}] is out of range: {where} has {len(node)} items", path=done)
        return node[step]
    if not isinstance(node, Record):
        raise EditError(f"{where} is a value, not a record: it has no field {step!r}", path=done)
    if step in node.fields:
        return node.fields[step]
    if step in node.subsections:
        return node.subsections[step]
    raise EditError(f"{where} has no field or subsection {step!r} (it has: {_names(node)})", path=done)


def get_at(root: Record, steps: Steps) -> Any:
    """The value at ``steps`` inside ``root``; an ``EditError`` naming the first step that is not there."""
    node: Any = root
    for i, step in enumerate(steps):
        node = _step(node, step, steps[:i])
    return node


def set_at(root: Record, steps: Steps, value: Any) -> None:
    """Replace the value at ``steps`` inside ``root`` (which must exist: this adds nothing)."""
    parent = get_at(root, steps[:-1])
    last = steps[-1]
    _step(parent, last, steps[:-1])  # exists, or the error names it
    if isinstance(last, int):
        parent[last] = value
    elif last in parent.fields:
        parent.fields[last] = value
    else:
        raise EditError(f"{show_path(steps)} is a subsection: set its fields", path=steps)
