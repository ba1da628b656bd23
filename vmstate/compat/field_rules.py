"""Rules over the fields of one vmsd, one migration direction at a time.

The wire carries no field names: what must agree is the sequence of fields
the writer puts on the wire at its version and the sequence the reader
reads at the version it loads.  Both sequences are aligned by name
(``difflib``), so a difference can be explained: removed, added without a
gate, gated differently, resized, retyped, reordered, or merely renamed
(same place and size: the wire never sees it).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable

from .context import Context, describe_field
from .findings import OLD_TO_NEW, Direction
from .model import FieldNode, VmsdNode, present
from .slot_rules import balance_possible, fits_slot, sizes_known

__all__ = ["NestedCompare", "compare_fields", "gated_additions", "size_change"]

#: compares the nested vmsds of two struct fields (in rules, injected to avoid an import cycle)
NestedCompare = Callable[[Context, FieldNode, FieldNode, str], None]


def _on_wire(node: VmsdNode, version: int) -> list[FieldNode]:
    return [f for f in node.fields if present(f, version) != "no"]


_SCALARS = ("bool", "int", "uint", "timer")


def _mixed_size_change(old: FieldNode, new: FieldNode, old_is_ours: bool) -> str | None:
    ours, dump = (old, new) if old_is_ours else (new, old)
    if not dump.size:
        return None
    if ours.element_size is not None:
        each = ours.element_size
    elif ours.size is None:
        return None
    elif ours.type.startswith(_SCALARS):
        each = ours.size
    elif ours.size % dump.size == 0:
        return None  # a buffer: the dump prints one element of a byte array, or the whole buffer
    else:
        each = ours.size
    if each == dump.size:
        return None
    old_each, new_each = (each, dump.size) if old_is_ours else (dump.size, each)
    return f"{old_each} -> {new_each} bytes per element"


def size_change(ctx: Context, old: FieldNode, new: FieldNode) -> str | None:
    """How the bytes of a field changed, or None if they agree as far as the schemas tell."""
    if old.opaque or new.opaque:
        return None
    if old.struct is not None and new.struct is not None and not ctx.any_qemu:
        # the nested vmsds are compared field by field; here only how many of them
        return None if old.size_rule == new.size_rule else f"{old.size_rule or 'one'} -> {new.size_rule or 'one'}"
    if (old.struct is not None or new.struct is not None) and ctx.any_qemu:
        return None  # QEMU's dump gives a struct field the C struct's size, not its wire size
    if ctx.mixed:
        return _mixed_size_change(old, new, ctx.old_sizes == "wire")
    if old.size is not None and new.size is not None:
        return None if old.size == new.size else f"{old.size} -> {new.size} bytes"
    if old.size != new.size:
        return f"{describe_field(old)} -> {describe_field(new)}"
    if old.size_rule != new.size_rule:
        return f"sized by {old.size_rule or '?'} -> {new.size_rule or '?'}"
    return None


def _compare_pair(ctx: Context, old: FieldNode, new: FieldNode, path: str, nodes: tuple[VmsdNode, VmsdNode],
                  direction: Direction, nested: NestedCompare) -> None:
    here = f"{path}.{new.name}" if path else new.name
    changed = size_change(ctx, old, new)
    if changed is not None:
        ctx.add("error", (direction,), "field-resized", here, *nodes,
                f"{changed}: the reader takes a different number of bytes than the writer put, "
                "so this field and every later one are misread")
    elif old.type and new.type and old.type != new.type and not (old.unused or new.unused):
        ctx.add("warning", (direction,), "field-type-changed", here, *nodes,
                f"{old.type} -> {new.type}: same size, but old and new code read the bytes differently")
    old_gate, new_gate = old.gate, new.gate
    if (old_gate or new_gate) and (old_gate != new_gate) and (old.gate_versions is None or new.gate_versions is None):
        ctx.add("warning", (direction,), "field-presence-depends", here, *nodes,
                f"its exists test changed ({old_gate or 'none'} -> {new_gate or 'none'}) and depends on the state: "
                "the schema cannot tell whether both sides agree when it is on the wire")
    if old.struct is not None and new.struct is not None:
        nested(ctx, old, new, here)


def _classify(ctx: Context, name: str, old: VmsdNode, new: VmsdNode, versions: tuple[int, int], path: str,
              direction: Direction) -> None:
    """A field on one side's wire only: removed, added or gated differently."""
    in_old = next((f for f in old.fields if f.name == name), None)
    in_new = next((f for f in new.fields if f.name == name), None)
    here = f"{path}.{name}" if path else name
    old_at, new_at = versions
    if in_old is not None and in_new is not None:
        gates = (f"exists {in_old.gate or 'none'} -> {in_new.gate or 'none'}" if in_old.gate or in_new.gate
                 else f"since v{in_old.since_version} -> since v{in_new.since_version}")
        where = (f"in old code at v{old_at} but not in new code at v{new_at}" if present(in_old, old_at) != "no"
                 else f"in new code at v{new_at} but not in old code at v{old_at}")
        ctx.add("error", (direction,), "field-gate-changed", here, old, new,
                f"{describe_field(in_new)} is on the wire {where} ({gates}): "
                "the reader and the writer disagree on its presence")
    elif in_old is not None:
        bump = "without a version bump" if old.version == new.version else \
            f"though new code still loads v{old.version}"
        ctx.add("error", (direction,), "field-removed", here, old, new,
                f"{describe_field(in_old)} was removed {bump}: old streams carry it where new code reads the "
                "next field, and new streams lack it where old code expects it")
    elif in_new is not None:
        ctx.add("error", (direction,), "field-added", here, old, new,
                f"{describe_field(in_new)} was added without a version gate or subsection: new code reads it "
                "from old streams that lack it, and old code does not expect it in new streams")


def compare_fields(ctx: Context, old: VmsdNode, new: VmsdNode, path: str, *, direction: Direction,
                   writer_version: int, reader_version: int, nested: NestedCompare) -> None:
    """Compare what the writer puts on the wire with what the reader reads, for one direction."""
    writer, reader = (old, new) if direction == OLD_TO_NEW else (new, old)
    sent, read = _on_wire(writer, writer_version), _on_wire(reader, reader_version)
    sent_names, read_names = [f.name for f in sent], [f.name for f in read]
    common = set(sent_names) & set(read_names)
    order_sent = [n for n in sent_names if n in common]
    order_read = [n for n in read_names if n in common]
    if order_sent != order_read:
        order_old, order_new = (order_sent, order_read) if direction == OLD_TO_NEW else (order_read, order_sent)
        first = next(i for i, (a, b) in enumerate(zip(order_old, order_new)) if a != b)
        ctx.add("error", (direction,), "fields-reordered", path or "(fields)", old, new,
                f"`{order_old[first]}` and `{order_new[first]}` changed places: the reader takes each "
                "field's bytes for another's")
    by_name_sent, by_name_read = {f.name: f for f in sent}, {f.name: f for f in read}
    for name in order_sent:
        o, n = (by_name_sent[name], by_name_read[name]) if direction == OLD_TO_NEW else \
            (by_name_read[name], by_name_sent[name])
        _compare_pair(ctx, o, n, path, (old, new), direction, nested)
    only_sent = [n for n in sent_names if n not in common]
    only_read = [n for n in read_names if n not in common]
    renamed, uncounted = _renames(ctx, sent, read, only_sent, only_read, old, new, path, direction)
    versions = (writer_version, reader_version) if direction == OLD_TO_NEW else (reader_version, writer_version)
    left = [n for n in only_sent + only_read if n not in renamed]
    if left and _may_balance(sent, read, common, uncounted, writer_version, reader_version):
        for name in left:
            _depends(ctx, name, sent, read, old, new, path, direction)
        return
    for name in left:
        _classify(ctx, name, old, new, versions, path, direction)


def _may_balance(sent: list[FieldNode], read: list[FieldNode], common: set[str], uncounted: set[str],
                 writer_version: int, reader_version: int) -> bool:
    """Whether fields with state-dependent tests can make up the bytes the unmatched fields differ by.

    Fields both sides have that the schemas cannot size (structs: QEMU's dump
    gives C sizes; counted buffers) are compared on their own and left out,
    as are padding slots only unknown array counts could fill.
    """
    def fixed(fields: list[FieldNode], version: int) -> list[FieldNode] | None:
        kept = [f for f in fields if present(f, version) == "yes" and f.name not in uncounted
                and not (f.name in common and (f.struct is not None or f.opaque or f.size is None))]
        return kept if sizes_known(kept) or not kept else None
    sent_fixed, read_fixed = fixed(sent, writer_version), fixed(read, reader_version)
    if sent_fixed is None or read_fixed is None:
        return False
    difference = sum(f.size or 0 for f in sent_fixed) - sum(f.size or 0 for f in read_fixed)
    return balance_possible(difference, sent, read, writer_version, reader_version)


def _depends(ctx: Context, name: str, sent: list[FieldNode], read: list[FieldNode], old: VmsdNode, new: VmsdNode,
             path: str, direction: Direction) -> None:
    """A field on one side only, where ``exists`` tests decided by the state may keep the layouts aligned."""
    field = next(f for f in (*sent, *read) if f.name == name)
    side = "the writer" if any(f.name == name for f in sent) else "the reader"
    tested = sorted({f.name for f in (*sent, *read) if f.gate is not None and f.gate_versions is None} - {name})
    here = f"{path}.{name}" if path else name
    if field.gate is not None and field.gate_versions is None:
        why = f"only {side} has it, behind an exists test that depends on the state (or a machine-type property)"
    else:
        why = f"only {side} has it; exists tests that depend on the state ({', '.join(f'`{t}`' for t in tested[:4])}) can make up its bytes"
    ctx.add("warning", (direction,), "field-presence-depends", here, old, new,
            f"{describe_field(field)}: {why}, so the schema cannot tell whether both sides agree on the layout")


def _renames(ctx: Context, sent: list[FieldNode], read: list[FieldNode], only_sent: list[str], only_read: list[str],
             old: VmsdNode, new: VmsdNode, path: str, direction: Direction) -> tuple[set[str], set[str]]:
    """Pair fields that changed name but kept their place and size: the wire does not notice.

    Also fields retired into a padding slot of their bytes (or padding given
    a field again).  Returns the names so explained, and those whose bytes
    only the dump's unknown array counts could make agree.
    """
    done: set[str] = set()
    uncounted: set[str] = set()
    matcher = difflib.SequenceMatcher(None, [f.name for f in sent], [f.name for f in read], autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "replace":
            continue
        if i2 - i1 == j2 - j1:
            for a, b in zip(sent[i1:i2], read[j1:j2]):
                if a.name not in only_sent or b.name not in only_read:
                    continue
                o, n = (a, b) if direction == OLD_TO_NEW else (b, a)
                if o.size is None or o.size != n.size or o.struct is not None or n.struct is not None:
                    continue
                retired = n.unused and not o.unused
                here = f"{path}.{n.name}" if path else n.name
                ctx.add("info", (direction,), "field-retired" if retired else "field-renamed", here, old, new,
                        f"`{o.name}` -> `{n.name}` at the same place and size ({o.size} bytes): "
                        + ("its bytes are now skipped as padding" if retired else "names are not on the wire"))
                done.update((a.name, b.name))
        block_sent = [f for f in sent[i1:i2] if f.name not in done and f.name in only_sent]
        block_read = [f for f in read[j1:j2] if f.name not in done and f.name in only_read]
        block_old, block_new = (block_sent, block_read) if direction == OLD_TO_NEW else (block_read, block_sent)
        slot = _slot(ctx, block_old, block_new, old, new, path, direction)
        if slot is not None:
            done.update(f.name for f in (*block_old, *block_new))
            if slot == "counts":
                uncounted.update(f.name for f in (*block_old, *block_new))
    return done, uncounted


def _slot(ctx: Context, block_old: list[FieldNode], block_new: list[FieldNode], old: VmsdNode, new: VmsdNode,
          path: str, direction: Direction) -> str | None:
    """Fields one side replaced with padding (or padding replaced with fields) at the same place."""
    if not block_old or not block_new or not sizes_known([*block_old, *block_new]):
        return None
    if all(f.unused for f in block_new) and not any(f.unused for f in block_old):
        retired, pads, real = True, block_new, block_old
    elif all(f.unused for f in block_old) and not any(f.unused for f in block_new):
        retired, pads, real = False, block_old, block_new
    else:
        return None
    fit = fits_slot(real, sum(f.size or 0 for f in pads), element_sizes=ctx.any_qemu)
    if fit is None:
        return None
    names = ", ".join(f"`{f.name}`" for f in real)
    pad_names = ", ".join(f"`{f.name}`" for f in pads)
    named = block_new[0].name  # where new code has it: the padding, or the field that took its place
    here = f"{path}.{named}" if path else named
    slot = sum(f.size or 0 for f in pads)
    what = (f"{names} -> padding {pad_names} of {slot} bytes: its bytes are now skipped" if retired
            else f"padding {pad_names} of {slot} bytes -> {names}: old code skips those bytes")
    if fit == "exact":
        ctx.add("info", (direction,), "field-retired" if retired else "field-from-padding", here, old, new,
                f"{what}, at the same place and size")
    else:
        ctx.add("warning", (direction,), "field-retired" if retired else "field-from-padding", here, old, new,
                f"{what}; the dump gives one element's size, so the layouts agree only if the element counts "
                f"make up {slot} bytes")
    return fit


def gated_additions(ctx: Context, old: VmsdNode, new: VmsdNode, path: str) -> None:
    """New fields kept off the wire at the old version: the compatible way to add state."""
    old_names = {f.name for f in old.fields}
    for field in new.fields:
        if field.name in old_names or present(field, old.version) != "no":
            continue
        gate = f"since v{field.since_version}" if field.gate is None else f"exists {field.gate}"
        here = f"{path}.{field.name}" if path else field.name
        ctx.add("info", (OLD_TO_NEW,), "field-added-gated", here, old, new,
                f"{describe_field(field)} is new, {gate}: absent from old v{old.version} streams, so new code "
                "still loads them" + ("" if new.version > old.version else "; new code never writes it at this version"))

