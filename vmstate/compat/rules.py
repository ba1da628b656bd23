"""The static check: compare two schema sets and say what breaks migration, which way.

Sections are matched by key when both sides have the same format (two of
our exports, two QEMU dumps), by vmsd name when one is ours and the other
QEMU's.  Per vmsd the rules follow QEMU's loader (migration/vmstate.c):

* a section's or subsection's version is on the wire and must lie in the
  reader's ``minimum_version..version``;
* a nested struct carries no version: each side uses its own;
* subsections are found by name (``vmstate_get_subsection``), an unknown
  one fails the load, a missing one is simply not loaded;
* fields carry no names: the writer's sequence must match the reader's
  (``field_rules``).
"""

from __future__ import annotations

from .context import Context, merge
from .field_rules import compare_fields, gated_additions
from .findings import BOTH, NEW_TO_OLD, OLD_TO_NEW, DiffReport, Finding
from .model import FieldNode, SchemaSet, VmsdNode

__all__ = ["compare_sets", "compare_vmsd"]

#: older versions compared per vmsd (a hostile file may claim versions 0..2**32-1)
_MAX_OLDER_VERSIONS = 256


def _windows(ctx: Context, old: VmsdNode, new: VmsdNode, path: str) -> tuple[bool, bool]:
    """Report version-window changes; say whether each direction can load at all."""
    loads_old = new.minimum_version <= old.version <= new.version
    loads_new = old.minimum_version <= new.version <= old.version
    if old.version > new.version:
        ctx.add("error", (OLD_TO_NEW,), "version-lowered", path, old, new,
                f"old code writes v{old.version}; new code loads at most v{new.version}")
    elif old.version < new.minimum_version:
        ctx.add("error", (OLD_TO_NEW,), "minimum-version-raised", path, old, new,
                f"new code loads v{new.minimum_version}..v{new.version} only; old code writes v{old.version}, "
                "so every old stream is refused")
    elif new.minimum_version > old.minimum_version:
        ctx.add("warning", (OLD_TO_NEW,), "minimum-version-raised", path, old, new,
                f"streams of v{old.minimum_version}..v{new.minimum_version - 1}, which old code still loaded "
                f"(from older releases), are refused; old code's own v{old.version} still loads")
    elif new.minimum_version < old.minimum_version:
        ctx.add("info", (OLD_TO_NEW,), "minimum-version-lowered", path, old, new,
                f"new code also loads v{new.minimum_version}..v{old.minimum_version - 1}")
    if new.version > old.version:
        ctx.add("error", (NEW_TO_OLD,), "version-raised", path, old, new,
                f"new code writes v{new.version}; old code loads at most v{old.version} and refuses every new "
                "stream (add state in a subsection with a `needed` test to keep migrating back)")
    elif new.version < old.minimum_version:
        ctx.add("error", (NEW_TO_OLD,), "version-below-old-minimum", path, old, new,
                f"new code writes v{new.version}; old code loads v{old.minimum_version}..v{old.version} only")
    return loads_old, loads_new


def compare_vmsd(ctx: Context, old: VmsdNode, new: VmsdNode, path: str, *, versioned: bool = True,
                 report_window: bool = True, at: tuple[int, int] | None = None) -> None:
    """Compare two vmsds and everything below them.

    ``versioned``: the version is on the wire (a section, a subsection, a
    device part loaded at the section version); otherwise (a nested struct)
    each side reads and writes at its own version, or at the ``at`` pair
    (old, new) a ``VMSTATE_VSTRUCT`` pins.
    """
    if old.name != new.name:
        ctx.add("error", BOTH, "vmsd-renamed", path or "(section)", old, new,
                f"vmsd `{old.name}` -> `{new.name}`: QEMU finds sections and subsections by this name")
    if versioned:
        probe = ctx if report_window else Context(ctx.device, ctx.old_sizes, ctx.new_sizes)
        loads_old, loads_new = _windows(probe, old, new, path or "(section)")
        if loads_old:
            compare_fields(ctx, old, new, path, direction=OLD_TO_NEW, writer_version=old.version,
                           reader_version=old.version, nested=_nested)
        if loads_new:
            compare_fields(ctx, old, new, path, direction=NEW_TO_OLD, writer_version=new.version,
                           reader_version=new.version, nested=_nested)
        _older_versions(ctx, old, new, path)
        gated_additions(ctx, old, new, path)
    else:
        old_at, new_at = at or (old.version, new.version)
        compare_fields(ctx, old, new, path, direction=OLD_TO_NEW, writer_version=old_at,
                       reader_version=new_at, nested=_nested)
        compare_fields(ctx, old, new, path, direction=NEW_TO_OLD, writer_version=new_at,
                       reader_version=old_at, nested=_nested)
    for old_field in old.fields:
        new_field = next((f for f in new.fields if f.name == old_field.name), None)
        if new_field is not None and (old_field.parts or new_field.parts or old_field.layout or new_field.layout):
            _compare_custom(ctx, old_field, new_field, old, new, f"{path}.{old_field.name}" if path else old_field.name)
    _compare_subsections(ctx, old, new, path)


def _older_versions(ctx: Context, old: VmsdNode, new: VmsdNode, path: str) -> None:
    """Streams of versions below old's own, which both sides claim to load, must read alike."""
    misread: dict[str, list[int]] = {}
    top = min(old.version, new.version)
    # versions come from the files: look at no more than the newest _MAX_OLDER_VERSIONS (QEMU's vmsds have < 100)
    for version in range(max(old.minimum_version, new.minimum_version, top - _MAX_OLDER_VERSIONS), top):
        scratch = Context(ctx.device, ctx.old_sizes, ctx.new_sizes)
        compare_fields(scratch, old, new, path, direction=OLD_TO_NEW, writer_version=version,
                       reader_version=version, nested=_nested)
        for finding in scratch.findings:
            if finding.severity == "error":
                misread.setdefault(finding.path, []).append(version)
    known = {f.path for f in ctx.findings if f.severity == "error"}
    for where, versions in misread.items():
        if where in known:
            continue  # already broken at the current version: reported there
        listed = ", ".join(f"v{v}" for v in sorted(versions))
        ctx.add("warning", (OLD_TO_NEW,), "older-version-misread", where, old, new,
                f"streams of {listed} (written by releases before the old code) are read differently by old and "
                "new code: a version gate changed below the current version")


def _nested(ctx: Context, old: FieldNode, new: FieldNode, path: str) -> None:
    assert old.struct is not None and new.struct is not None
    at = (old.struct.version if old.struct_version is None else old.struct_version,
          new.struct.version if new.struct_version is None else new.struct_version)
    compare_vmsd(ctx, old.struct, new.struct, path, versioned=False, at=at)


def _signature(node: VmsdNode) -> tuple[tuple[object, ...], ...]:
    return tuple((f.size, f.size_rule, f.type, f.since_version, f.gate) for f in node.fields)


def _needed_text(node: VmsdNode) -> str:
    if not node.needed_known:
        return "when its `needed` test holds (the dump does not say which)"
    return f"when `{node.needed}` holds" if node.needed else "always (no `needed` test)"


def _compare_subsections(ctx: Context, old: VmsdNode, new: VmsdNode, path: str) -> None:
    old_names = [s.name for s in old.subsections]
    new_names = [s.name for s in new.subsections]
    removed = [s for s in old.subsections if s.name not in new_names]
    added = [s for s in new.subsections if s.name not in old_names]
    for gone in list(removed):
        twin = next((s for s in added if _signature(s) == _signature(gone)), None)
        if twin is None:
            continue
        removed.remove(gone)
        added.remove(twin)
        ctx.add("error", BOTH, "subsection-renamed", f"{path}.{{{gone.name}}}" if path else f"{{{gone.name}}}",
                gone, twin, f"renamed to `{twin.name}`; it is sent {_needed_text(gone)}, and a stream carrying "
                "it under either name is refused by the other side (QEMU finds subsections by name)")
    for gone in removed:
        ctx.add("error", (OLD_TO_NEW,), "subsection-removed", f"{path}.{{{gone.name}}}" if path else f"{{{gone.name}}}",
                gone, None, f"old code sends it {_needed_text(gone)}; new code no longer knows it and refuses "
                "such streams")
    for extra in added:
        here = f"{path}.{{{extra.name}}}" if path else f"{{{extra.name}}}"
        if extra.needed_known and extra.needed is None:
            ctx.add("error", (NEW_TO_OLD,), "subsection-added-always", here, None, extra,
                    "new code always sends it; old code does not know it and refuses every new stream")
        else:
            ctx.add("info", (NEW_TO_OLD,), "subsection-added", here, None, extra,
                    f"new code sends it {_needed_text(extra)}; old code refuses streams that carry it, so it "
                    "must stay unneeded toward old destinations (e.g. a machine-type property)")
    common_old = [n for n in old_names if n in new_names]
    common_new = [n for n in new_names if n in old_names]
    if common_old != common_new:
        first = next(i for i, (a, b) in enumerate(zip(common_old, common_new)) if a != b)
        ctx.add("warning", BOTH, "subsections-reordered", f"{path}.{{subsections}}" if path else "{subsections}",
                old, new, f"`{common_old[first]}` and `{common_new[first]}` changed places: QEMU finds subsections by name, "
                "so both still load, but new code writes them in another order: streams are no longer "
                "byte-identical to old code's (fixtures, stream diffs, checksums)")
    for name in common_old:
        o, n = old.subsection(name), new.subsection(name)
        assert o is not None and n is not None
        here = f"{path}.{{{name}}}" if path else f"{{{name}}}"
        if o.needed_known and n.needed_known and o.needed and not n.needed:
            ctx.add("warning", (NEW_TO_OLD,), "needed-made-mandatory", here, o, n,
                    f"old code sent it only when `{o.needed}` held, new code always does: destinations that "
                    "lack it (older releases and machine types the test kept it from) refuse every new stream")
        elif o.needed_known and n.needed_known and not o.needed and n.needed:
            ctx.add("info", BOTH, "needed-made-optional", here, o, n, f"now sent only when `{n.needed}` holds")
        compare_vmsd(ctx, o, n, here)


def _compare_custom(ctx: Context, old_field: FieldNode, new_field: FieldNode, old: VmsdNode, new: VmsdNode,
                    path: str) -> None:
    """A custom field (the ``virtio`` info): compare the layout parts it describes."""
    if old_field.opaque or new_field.opaque:
        return
    old_parts, new_parts = dict(old_field.parts), dict(new_field.parts)
    names = [node.name for node in new_parts.values()]
    for key in sorted(old_parts.keys() | new_parts.keys()):
        o, n = old_parts.get(key), new_parts.get(key)
        if o is None or n is None:
            ctx.add("warning", BOTH, "custom-layout-changed", f"{path}.<{key}>", old, new,
                    f"layout part `{key}` exists only in {'new' if o is None else 'old'} code")
            continue
        # a part at the section's version (a device's own part) is loaded at the version on the wire
        versioned = o.version == old.version and n.version == new.version
        same_window = (o.minimum_version, n.minimum_version) == (old.minimum_version, new.minimum_version)
        # name a part by its vmsd, or by its place when several share one (the queue layouts)
        here = f"{path}.{{{n.name}}}" if names.count(n.name) == 1 else f"{path}.<{key}>"
        compare_vmsd(ctx, o, n, here, versioned=versioned, report_window=not same_window)
    old_facts, new_facts = dict(old_field.layout), dict(new_field.layout)
    for key in sorted(old_facts.keys() | new_facts.keys()):
        if old_facts.get(key) != new_facts.get(key):
            ctx.add("warning", BOTH, "custom-layout-changed", f"{path}.<{key or 'layout'}>", old, new,
                    f"{old_facts.get(key, 'absent')} -> {new_facts.get(key, 'absent')}: the custom codec reads "
                    "and writes differently")


def _pairs(old: SchemaSet, new: SchemaSet) -> tuple[list[tuple[str, str]], list[str], list[str], str]:
    if old.format == new.format:
        keys = [(k, k) for k in old.sections if k in new.sections]
        # a type renamed or merged into another keeps its sections if the vmsd stays (pci-piix3 and PIIX3-xen
        # -> PIIX3): QEMU finds a section by its idstr, which ends in the vmsd name, never by the type's name
        gone = [(a, b) for a in sorted(old.sections.keys() - new.sections.keys()) for b in sorted(new.sections)
                if _same_vmsd(old.sections[a], new.sections[b])]
        came = [(a, b) for b in sorted(new.sections.keys() - old.sections.keys()) for a in sorted(old.sections)
                if _same_vmsd(old.sections[a], new.sections[b])]
        renamed = sorted(set(gone) | set(came))
        return (keys + renamed, sorted(old.sections.keys() - new.sections.keys() - {a for a, _ in renamed}),
                sorted(new.sections.keys() - old.sections.keys() - {b for _, b in renamed}), "key")
    new_by_name: dict[str, list[str]] = {}
    for key in sorted(new.sections):
        new_by_name.setdefault(new.sections[key].name, []).append(key)
    old_by_name: dict[str, list[str]] = {}
    for key in sorted(old.sections):
        old_by_name.setdefault(old.sections[key].name, []).append(key)
    # every pair sharing a vmsd name: our virtio-scsi@pci and @mmio against QEMU's virtio-scsi-device
    # and vhost-user-scsi, which all write `virtio-scsi` sections
    pairs = [(a, b) for name in sorted(old_by_name.keys() & new_by_name.keys())
             for a in old_by_name[name] for b in new_by_name[name]]
    paired_old = {a for a, _ in pairs}
    paired_new = {b for _, b in pairs}
    return (pairs, sorted(old.sections.keys() - paired_old), sorted(new.sections.keys() - paired_new), "vmsd name")


def _same_vmsd(old: VmsdNode, new: VmsdNode) -> bool:
    """Same vmsd name and field names: one vmsd under two type names (two types may share a name only)."""
    return old.name == new.name and [f.name for f in old.fields] == [f.name for f in new.fields]


def compare_sets(old: SchemaSet, new: SchemaSet) -> DiffReport:
    """Compare every section two schema sets share, and note those only one has."""
    pairs, only_old, only_new, matched_by = _pairs(old, new)
    findings: list[Finding] = []
    notes: list[str] = []
    labels = [old_key if old_key == new_key else f"{old_key} ~ {new_key}" for old_key, new_key in pairs]
    for label, (old_key, new_key) in zip(labels, pairs):
        ctx = Context(label, old.sizes, new.sizes)
        compare_vmsd(ctx, old.sections[old_key], new.sections[new_key], "")
        findings += merge(ctx.findings)
    if matched_by == "key":
        for key in only_old:
            findings.append(_section_only(key, old.sections[key], removed=True))
        for key in only_new:
            findings.append(_section_only(key, new.sections[key], removed=False))
    else:
        notes.append("one side is our schema and the other QEMU's dump: sections only one side has are listed, "
                     "not judged; QEMU's dump shows a virtio device as one opaque `virtio` field")
    if old.machine and new.machine and old.machine != new.machine:
        notes.append(f"machine types differ ({old.machine} -> {new.machine}); -dump-vmstate shows device classes, "
                     "not the machine type's compat properties, which decide `needed` tests at run time")
    return DiffReport(old=old.label, new=new.label, findings=tuple(findings), compared=tuple(labels),
                      only_old=tuple(only_old), only_new=tuple(only_new), matched_by=matched_by, notes=tuple(notes))


def _section_only(key: str, node: VmsdNode, *, removed: bool) -> Finding:
    ctx = Context(key, "wire", "wire")
    if removed:
        ctx.add("error", (OLD_TO_NEW,), "section-removed", "", node, None,
                f"new code has no `{node.name}` section: streams from old code with this device are refused")
    else:
        ctx.add("info", (NEW_TO_OLD,), "section-added", "", None, node,
                f"only new code has `{node.name}`: old code refuses streams of VMs that use it")
    return ctx.findings[0]

