"""Field-level differences between two decoded sections.

Both sides are value trees (``image.value_tree``): a record is
``{"version", "fields", "subsections"}``.  The walk descends only into
subtrees that differ (a virtio device has 1,024 queue slots, nearly all
equal); where two lists differ in length, DeepDiff aligns their items so an
inserted element is one change.  Paths come out in our notation
(``virtio.vq[0].last_avail_idx``, ``virtio.virtio/device_endian``), in wire
order.
"""

from __future__ import annotations

from typing import Any, Iterator

import attrs

from vmstate.display import path_step

__all__ = ["FieldChange", "compare_trees", "display_path", "tree_paths"]

#: the side of a change where the item does not exist
_ABSENT = object()

@attrs.frozen
class FieldChange:
    """One difference inside a section."""

    path: str
    #: ``changed``, ``only_a``, ``only_b``, ``version`` (a record's version) or ``subsection_only_a/b``
    kind: str
    a: Any = None
    b: Any = None
    #: the description the changed field belongs to (a subsection's name,
    #: the section's vmsd), if known: text output looks up how to show values
    owner: str | None = None


def display_path(tokens: list[Any]) -> str:
    """Render a DeepDiff path list over value trees in our notation."""
    text = ""
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if isinstance(token, int):
            text += f"[{token}]"
            i += 1
            continue
        if token in ("fields", "subsections") and i + 1 < len(tokens):
            name = path_step(str(tokens[i + 1])) if token == "fields" else str(tokens[i + 1])
            text = f"{text}.{name}" if text else name
            i += 2
            continue
        if token == "version":
            text = f"{text}.(version)" if text else "(version)"
        else:
            text = f"{text}.{token}" if text else str(token)
        i += 1
    return text


def _order(tree_a: Any, tree_b: Any, tokens: list[Any]) -> tuple[int, ...]:
    """A sort key following wire order: each step's position in whichever side has it."""
    key: list[int] = []
    for token in tokens:
        node = tree_a if isinstance(tree_a, (dict, list)) else tree_b
        if isinstance(node, dict):
            names = list(node)
            if isinstance(tree_b, dict):
                names += [n for n in tree_b if n not in node]
            if token in ("version", "fields", "subsections"):
                key.append({"version": 0, "fields": 1, "subsections": 2}[token])
            else:
                key.append(names.index(token) if token in names else len(names))
        elif isinstance(token, int):
            key.append(token)
        tree_a = _step(tree_a, token)
        tree_b = _step(tree_b, token)
    return tuple(key)


def _step(node: Any, token: Any) -> Any:
    if isinstance(node, dict):
        return node.get(token)
    if isinstance(node, list) and isinstance(token, int) and token < len(node):
        return node[token]
    return None


def _missing(value: Any) -> bool:
    """The side where an item does not exist: our marker, or DeepDiff's ``NotPresent``."""
    return value is _ABSENT or type(value).__name__ == "NotPresent"


def _kind(tokens: list[Any], a: Any, b: Any) -> str:
    subsection = len(tokens) >= 2 and tokens[-2] == "subsections"
    if _missing(a):
        return "subsection_only_b" if subsection else "only_b"
    if _missing(b):
        return "subsection_only_a" if subsection else "only_a"
    if tokens and tokens[-1] == "version":
        return "version"
    return "changed"


def _same_item(x: Any, y: Any, level: Any = None) -> bool:
    return bool(x == y)


def _deepdiff(tree_a: Any, tree_b: Any, prefix: list[Any], found: list[tuple[list[Any], Any, Any]]) -> None:
    from deepdiff import DeepDiff  # imported when first needed: it costs 0.15 s at start-up

    diff = DeepDiff(tree_a, tree_b, view="tree", verbose_level=2, iterable_compare_func=_same_item)
    for report_type, levels in diff.items():
        if report_type == "iterable_item_moved":
            continue  # an equal item shifted by an insertion or removal: not a change
        for level in levels:
            found.append((prefix + level.path(output_format="list"), level.t1, level.t2))


def _walk(a: Any, b: Any, tokens: list[Any], found: list[tuple[list[Any], Any, Any]]) -> None:
    """Descend where both sides have the same shape, skipping equal subtrees."""
    if a == b:
        return
    if isinstance(a, dict) and isinstance(b, dict):
        for key in list(a) + [k for k in b if k not in a]:
            if key not in b or key not in a:
                found.append(([*tokens, key], a.get(key, _ABSENT), b.get(key, _ABSENT)))
            else:
                _walk(a[key], b[key], [*tokens, key], found)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for index, (x, y) in enumerate(zip(a, b)):
            _walk(x, y, [*tokens, index], found)
    elif isinstance(a, list) and isinstance(b, list):
        # Lengths differ: DeepDiff lines the items up (an insertion is one change, not a cascade).
        before = len(found)
        _deepdiff(a, b, tokens, found)
        if len(found) == before:
            # items equal to others were added or removed (DeepDiff calls that a move): the tail differs
            shorter = min(len(a), len(b))
            for index in range(shorter, max(len(a), len(b))):
                found.append(([*tokens, index], a[index] if index < len(a) else _ABSENT,
                              b[index] if index < len(b) else _ABSENT))
    else:
        found.append((tokens, a, b))




def _owner(tokens: list[Any], top: str | None) -> str | None:
    """The description holding the field ``tokens`` end at: the innermost subsection, or ``top``."""
    owner = top
    for i, token in enumerate(tokens[:-1]):
        if token == "subsections":
            owner = str(tokens[i + 1])
        elif token == "fields" and i + 2 < len(tokens) and tokens[i + 2] != "subsections":
            owner = None  # below a field (a struct, an element): its records name no description
    return owner


def compare_trees(tree_a: Any, tree_b: Any, owner: str | None = None) -> list[FieldChange]:
    """Every difference between two sections' value trees, in wire order.

    ``owner`` names the description of the trees' top record (the section's
    vmsd), so that each change can say which description its field is in.
    """
    found: list[tuple[list[Any], Any, Any]] = []
    _walk(tree_a, tree_b, [], found)
    changes: list[tuple[tuple[int, ...], FieldChange]] = []
    for tokens, t1, t2 in found:
        kind = _kind(tokens, t1, t2)
        a = None if _missing(t1) else t1
        b = None if _missing(t2) else t2
        change = FieldChange(display_path(tokens), kind, a, b, _owner(tokens, owner))
        changes.append((_order(tree_a, tree_b, tokens), change))
    changes.sort(key=lambda item: item[0])
    return [change for _, change in changes]


def tree_paths(tree: Any) -> Iterator[str]:
    """The path of every field, subsection and element of a value tree (for glob checks)."""
    stack: list[tuple[Any, list[Any]]] = [(tree, [])]
    while stack:
        node, tokens = stack.pop()
        if tokens:
            yield display_path(tokens)
        if isinstance(node, dict) and "fields" in node:
            for name, value in node["fields"].items():
                stack.append((value, [*tokens, "fields", name]))
            for name, sub in node.get("subsections", {}).items():
                stack.append((sub, [*tokens, "subsections", name]))
        elif isinstance(node, list):
            stack.extend((value, [*tokens, i]) for i, value in enumerate(node))
