"""``vmstate edit``: set fields of a stream's sections by path, or print them.

Exit status 0: written (or printed); 2: an unknown section or path, a value
that does not fit, a bad input, and then no OUT is written.
"""

from __future__ import annotations

from pathlib import Path

import click

from ..cli_support import debug_of, guarded
from ..errors import EditError
from ..text import printable

__all__ = ["edit", "export", "import_"]

_PROG = "vmstate"

from ..cli import _SUFFIX_FORMATS, _registry  # convert's suffixes and the registry, not copies of them


@click.command()
@click.argument("source", metavar="IN", type=click.Path(path_type=Path))
@click.argument("out", metavar="[OUT]", required=False, type=click.Path(path_type=Path))
@click.option("--set", "sets", multiple=True, metavar="SECTION:PATH=VALUE",
              help="Set a field (repeatable). SECTION is the idstr migration-diff prints (cpu#1 for instance 1), "
                   "PATH its field path (virtio.device.mac).")
@click.option("--get", "gets", multiple=True, metavar="SECTION:PATH",
              help="Print a field's value (repeatable); after the edits, from OUT, when there are --set edits.")
@click.option("--to", type=click.Choice(["msgpack", "cbor", "json", "qemu"]),
              help="Output format; default: from OUT's suffix (.mig .msgpack .cbor .json), else the input's.")
@click.option("--profile", "profile_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Check the edited sections against this destination (vmstate preflight --save-profile); "
                   "default: against the device the stream came from.")
@click.option("--force", is_flag=True, help="Write OUT even if QEMU would refuse to load it (the reasons are printed).")
@click.pass_context
def edit(ctx: click.Context, source: Path, out: Path | None, sets: tuple[str, ...], gets: tuple[str, ...],
         to: str | None, profile_file: Path | None, force: bool) -> None:
    """Set fields of IN's sections and write the result to OUT, or print fields with --get.

    Values are read by the field's kind: integers in any base (0x1f), enum
    names (virtio.device_endian=little), MACs (virtio.device.mac=52:54:00:ab:cd:ef),
    byte buffers as hex, lists as JSON. QEMU's save rules then apply: a
    virtio section's subsections follow their needed rules (device_endian
    set to a non-default value adds virtio/device_endian), virtio.num_queues
    resizes the queue list, and an edit the rules would undo is refused.
    Nothing is written unless every edit is made; OUT is replaced atomically.
    The edited sections then get pre-flight's device checks (ring indices
    without a ring, MSI-X vectors past the table, features not offered,
    has_vnet_hdr without a vnet header, read-only PCI config bytes): what
    QEMU would refuse is an error unless --force.

    \b
    vmstate edit in.mig out.mig --set '0000:00:02.0/virtio-net:virtio.device.mac=52:54:00:ab:cd:ef'
    vmstate edit in.mig --get '0000:00:02.0/virtio-net:virtio.device_endian'
    """

    def action() -> int:
        from .fields import Assignment
        from .paths import parse_ref, split_assignment
        from .stream import edit_file, get_fields

        if not sets and not gets:
            raise EditError("nothing to do: give --set SECTION:PATH=VALUE (with OUT) or --get SECTION:PATH")
        if sets and out is None:
            raise EditError("--set needs OUT, the file to write")
        if out is not None and not sets:
            raise EditError(f"{out}: OUT is written only with --set edits")
        assignments = [Assignment(parse_ref(ref), value) for ref, value in map(split_assignment, sets)]
        refs = [parse_ref(text) for text in gets]
        descriptions = _registry()
        if sets:
            assert out is not None
            from .checks import EditChecks

            profile = None
            if profile_file is not None:
                from ..preflight.profile import Profile

                profile = Profile.load(profile_file)
            checks = EditChecks(profile)
            output = to or _SUFFIX_FORMATS.get(out.suffix.lower())
            edit_file(source, out, assignments, to=output, descriptions=descriptions, checks=checks, force=force)
            for what in checks.unchecked:
                click.echo(printable(f"vmstate: note: not checked: {what}"), err=True)
            for refusal in checks.refusals:
                click.echo(printable(f"vmstate: warning: QEMU would refuse {refusal.section} on load: "
                                     f"{' / '.join(refusal.qemu_lines[:1])} (at {refusal.path}; it needs "
                                     f"{refusal.fix}); written anyway (--force)"), err=True)
        if refs:
            for ref, value in get_fields(out if sets and out is not None else source, refs, descriptions=descriptions):
                click.echo(printable(f"{ref.text} = {value}"))
        return 0

    raise SystemExit(guarded(_PROG, action, debug=debug_of(ctx)))


@click.command(name="export")
@click.argument("source", metavar="IN", type=click.Path(path_type=Path))
@click.argument("out", metavar="STATE.json", type=click.Path(path_type=Path))
@click.pass_context
def export(ctx: click.Context, source: Path, out: Path) -> None:
    """Write IN's device state as one plain JSON document to read and edit (RAM stays in IN).

    Fields in wire order; integers as numbers (past 2**53 as "0x.." strings,
    which jq keeps exact), named values by name, MACs as 52:54:00:..,
    other bytes as hex; unused queue slots folded as {"(items)": [...],
    "(then all zero)": N}. 'vmstate import' applies it back.
    """

    def action() -> int:
        from .document import export_file

        count = export_file(source, out, descriptions=_registry())
        click.echo(printable(f"{out}: {count} sections of {source}"))
        return 0

    raise SystemExit(guarded(_PROG, action, debug=debug_of(ctx)))


@click.command(name="import")
@click.argument("document", metavar="STATE.json", type=click.Path(path_type=Path))
@click.argument("out", metavar="OUT", type=click.Path(path_type=Path))
@click.option("--base", type=click.Path(path_type=Path), metavar="IN",
              help="The stream to apply the document to (its RAM and framing); default: the one it was exported from.")
@click.option("--to", type=click.Choice(["msgpack", "cbor", "json", "qemu"]),
              help="Output format; default: from OUT's suffix, else the base's.")
@click.pass_context
def import_(ctx: click.Context, document: Path, out: Path, base: Path | None, to: str | None) -> None:
    """Apply an edited 'vmstate export' document to its base stream and write OUT.

    Every key is checked against the base's sections: an unknown or missing
    section, field or subsection is an error naming its path. Each changed
    value goes through 'vmstate edit's rules. Nothing is written unless all of
    it applies.
    """

    def action() -> int:
        from .document import import_file

        output = to or _SUFFIX_FORMATS.get(out.suffix.lower())
        count = import_file(document, out, base=base, to=output, descriptions=_registry())
        click.echo(printable(f"{out}: {count} section{'' if count == 1 else 's'} changed"))
        return 0

    raise SystemExit(guarded(_PROG, action, debug=debug_of(ctx)))
