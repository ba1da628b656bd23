"""The ``vmstate`` command: dump and check QEMU migration streams.

Errors are one line on stderr with the byte offset and field path, exit
status 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any, Callable, NoReturn

import click

from . import __version__
from .cli_support import debug_of, fail, guarded
from .errors import TruncatedError, VMStateError
from .text import printable

__all__ = ["main", "cli"]


_PROG = "vmstate"


def _fail(message: str) -> NoReturn:
    fail(_PROG, message)


def _line(text: str) -> None:
    """Print one line of text output, escaping what came from the input."""
    click.echo(printable(text))


def _run(ctx: click.Context, action: Callable[[], int]) -> None:
    """Run a subcommand, turning expected failures into one line and exit 2."""
    sys.exit(guarded(_PROG, action, debug=debug_of(ctx)))


def _registry() -> Any:
    from devices import DEFAULT_REGISTRY

    return DEFAULT_REGISTRY


def _lookup(dump: Path | None) -> Any:
    """Our descriptions, then (with ``--descriptions``) those of a QEMU ``-dump-vmstate`` file."""
    if dump is None:
        return _registry()
    from .compat.dump_lookup import DumpDescriptions

    return DumpDescriptions.load(dump, fallback=_registry())


_DESCRIPTIONS_HELP = (
    "Also decode sections we do not describe with the vmsds of a QEMU -dump-vmstate JSON file "
    "(of the QEMU that wrote the stream); what the dump cannot show is refused, never guessed."
)


class _LazyGroup(click.Group):
    """A group whose command groups from other packages are imported only when one is run.

    ``vmstate dump`` and ``vmstate --help`` then never import ``vmstate.diff``
    or ``vmstate.compat`` (nor, through them, deepdiff): the help lists them
    with the one-line help kept here (a test holds it equal to theirs).
    """

    #: command name -> (module, attribute, one-line help) of the command
    LAZY = {
        "diff": ("vmstate.diff.cli", "migration_diff", "Show field by field how migration stream or snapshot B differs from A."),
        "compat": ("vmstate.compat.cli", "compat", "Check that migration keeps working across versions of the descriptions."),
        "preflight": ("vmstate.preflight.cli", "preflight", "Predict whether the destination QEMU will load STREAM, and if not, why."),
        "edit": ("vmstate.edit.cli", "edit", "Set fields of IN's sections and write the result to OUT, or print fields with --get."),
        "export": ("vmstate.edit.cli", "export", "Write IN's device state as one plain JSON document to read and edit (RAM stays in IN)."),
        "import": ("vmstate.edit.cli", "import_", "Apply an edited 'vmstate export' document to its base stream and write OUT."),
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.LAZY})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.LAZY and cmd_name not in self.commands:
            module, attribute, _help = self.LAZY[cmd_name]
            command: click.Command = getattr(importlib.import_module(module), attribute)
            self.add_command(command, name=cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            if name in self.LAZY and name not in self.commands:
                rows.append((name, click.Command(name, help=self.LAZY[name][2]).get_short_help_str(limit)))
            else:
                command = self.get_command(ctx, name)
                if command is not None and not command.hidden:
                    rows.append((name, command.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vmstate")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Decode, check and compare QEMU live-migration streams."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


@cli.command()
@click.argument("stream", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the decoding as JSON (every value).")
@click.option("--full", is_flag=True,
              help="Print every list item and every byte: no runs of all-zero or identical items folded, nothing cut.")
@click.option("--descriptions", "dump_file", type=click.Path(path_type=Path), metavar="DUMP.json", help=_DESCRIPTIONS_HELP)
@click.option("--digest", type=click.Choice(["xxh3-128", "sha256"]), default="xxh3-128", show_default=True,
              help="The digest of each RAM block's bytes (sha256: what sha256sum of its extracted file prints).")
@click.pass_context
def dump(ctx: click.Context, stream: Path, as_json: bool, full: bool, dump_file: Path | None, digest: str) -> None:
    """Print a stream's sections field by field (RAM summarised per block).

    The text is folded for reading: a run of all-zero list items (unused
    virtqueues) or of items equal to the one before shows as one line
    (vq[3..1023]: 1021 all zero), a long byte string as its length and first
    bytes. --full shows everything; --json keeps every value.
    """

    def action() -> int:
        from .dump.kinds import display_kinds
        from .dump import read_dump, render_json, render_text
        from .spill import Spill

        with Spill() as spill:
            model = read_dump(stream, _lookup(dump_file), spill, digest)
            out = sys.stdout
            if as_json:
                for piece in render_json(model):
                    out.write(piece)
                out.write("\n")
                out.flush()
            else:
                for line in render_text(model, display_kinds(), full=full):
                    out.write(line + "\n")
                out.flush()
        return 0

    _run(ctx, action)


@cli.command()
@click.argument("streams", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--allow-unnamed", is_flag=True,
              help="Do not fail when a section we describe (every virtio device) was decoded only by the vmdesc or kept raw.")
@click.option("--strict", is_flag=True, help="Also fail when any byte is raw or opaque: every byte named.")
@click.option("--descriptions", "dump_file", type=click.Path(path_type=Path), metavar="DUMP.json", help=_DESCRIPTIONS_HELP)
@click.pass_context
def check(ctx: click.Context, streams: tuple[Path, ...], as_json: bool, allow_unnamed: bool, strict: bool,
          dump_file: Path | None) -> None:
    """Decode each stream fully, re-encode it and compare byte for byte.

    Every file is checked even if an earlier one fails. Exit 0 if all
    re-encode identically and every section we describe was decoded by our
    description; 1 if any does not re-encode identically, or a section we
    describe fell back to the vmdesc or to raw bytes (unless --allow-unnamed),
    or (--strict) any byte is raw or opaque; 2 if any cannot be read.
    """

    def action() -> int:
        from streams.files import open_stream_pair
        from streams.qemu import check_stream

        results: list[tuple[Path, Any]] = []
        unreadable = 0
        lookup = _lookup(dump_file)
        for path in streams:
            try:
                with open_stream_pair(path) as (source, original):  # a compressed file is unpacked once
                    results.append((path, check_stream(source, original, descriptions=lookup)))
            except (VMStateError, OSError) as error:
                if ctx.obj.get("debug"):
                    raise
                unreadable += 1
                message = str(error) if isinstance(error, VMStateError) else (error.strerror or str(error))
                results.append((path, message))
                click.echo(f"vmstate: error: {printable(f'{path}: {message}')}", err=True)
        if as_json:
            click.echo(json.dumps([_report_json(p, r) for p, r in results], indent=2))
        else:
            for path, report in results:
                if not isinstance(report, str):
                    _print_report(path, report)
        reports = [r for _, r in results if not isinstance(r, str)]
        if unreadable:
            return 2
        failed = any(not r.identical for r in reports)
        if not allow_unnamed:
            failed = failed or any(r.unnamed for r in reports)
        if strict:
            failed = failed or any(r.raw_bytes or r.opaque_bytes for r in reports)
        return 1 if failed else 0

    _run(ctx, action)


def _described() -> dict[str, Any]:
    from devices.virtio.sections import DEVICE_CLASSES, section_description

    named: dict[str, Any] = {d.name: d for d in _registry().descriptions()}
    for name in DEVICE_CLASSES:
        named[f"{name}@pci"] = section_description(name, "pci")
        named[f"{name}@mmio"] = section_description(name, "mmio")
    return named


@cli.command()
@click.argument("name", required=False)
@click.option("--stream", "stream", type=click.Path(path_type=Path), metavar="FILE",
              help="Print QEMU's own description of FILE's sections (its vmdesc trailer) instead.")
@click.pass_context
def describe(ctx: click.Context, name: str | None, stream: Path | None) -> None:
    """List the sections we describe, or print one description as JSON.

    Virtio sections depend on their transport: ask for 'virtio-net@pci' or
    'virtio-net@mmio'. NAME a qcow2 disk lists its internal snapshots (each
    readable as DISK@TAG by dump, check, migration-diff, convert); NAME a
    libvirt save image shows its header and domain. With --stream FILE, print the vmdesc JSON QEMU
    wrote at the end of FILE (NAME then picks one section by idstr); exit 1
    if FILE has none (machine types before 2.3 write none), 2 if FILE is
    truncated or damaged.
    """

    def action() -> int:
        if stream is not None:
            return _describe_stream(stream, name)
        if name is not None and _is_qcow2(name):
            return _describe_qcow2(Path(name))
        if name is not None and _is_save_image(name):
            return _describe_save_image(Path(name))
        from .schema import description_to_json

        described = _described()
        if name is None:
            for key in sorted(described):
                d = described[key]
                click.echo(f"{key:<28} v{d.minimum_version}..{d.version}")
            return 0
        if name not in described:
            _fail(f"no description named {name!r} (run 'vmstate describe' for the list)")
        click.echo(json.dumps(description_to_json(described[name]), indent=2))
        return 0

    _run(ctx, action)


def _is_qcow2(name: str) -> bool:
    from streams.qcow2 import is_qcow2

    return is_qcow2(name)


def _describe_qcow2(disk: Path) -> int:
    """The snapshot table of a qcow2 disk: each snapshot's tag, id, VM state size, date and VM clock."""
    import time

    from streams.qcow2 import list_snapshots

    snapshots = list_snapshots(disk)
    _line(f"{disk}: {len(snapshots)} internal snapshot(s)")
    for snapshot in snapshots:
        state = f"{snapshot.vm_state_size} bytes of VM state" if snapshot.vm_state_size else "disk only"
        date = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(snapshot.date_sec))
        clock = snapshot.vm_clock_nsec / 1e9
        _line(f"  {snapshot.name:<20} id {snapshot.id_str or '-':<4} {state:<28} {date} UTC  vm clock {clock:.3f} s"
              + (f"  ({disk}@{snapshot.name})" if snapshot.vm_state_size else ""))
    return 0


def _is_save_image(name: str) -> bool:
    from streams.libvirt_save import is_save_image

    try:
        with open(name, "rb") as file:
            return is_save_image(file.read(16))
    except OSError:
        return False


def _describe_save_image(path: Path) -> int:
    """A libvirt save image's header fields, its domain and where its stream starts."""
    from streams.libvirt_save import read_header

    with open(path, "rb") as file:
        header = read_header(file)
    _line(f"{path}: libvirt save image{' (unfinished: LibvirtQemudPart)' if header.partial else ''}, "
          f"version {header.version}, {header.byte_order}-endian header")
    _line(f"  domain {header.domain_name or '?'}, machine {header.machine or '?'}, "
          f"{'was running' if header.was_running else 'was paused'}")
    _line(f"  format {header.format_name} ({header.format}); domain XML {len(header.xml)} bytes"
          + (f", cookie at {header.cookie_offset} ({len(header.cookie or '')} bytes)" if header.cookie_offset else "")
          + f"; data_len {header.data_len}; the QEMU stream starts at {header.stream_offset:#x}")
    return 0


def _describe_stream(stream: Path, idstr: str | None) -> int:
    from streams.files import open_stream
    from streams.qemu import StreamReader

    with open_stream(stream) as source:
        vmdesc = StreamReader(source).vmdesc
    if vmdesc is None:
        _complete_or_fail(stream)
        _line_err(f"vmstate: {stream}: no vmdesc trailer: the stream is complete, and machine types before 2.3 write none")
        return 1
    if idstr is not None:
        devices = [d for d in vmdesc.get("devices", []) if isinstance(d, dict) and d.get("name") == idstr]
        if not devices:
            _fail(f"{stream}: the vmdesc has no section {idstr!r}")
        vmdesc = devices[0] if len(devices) == 1 else {"devices": devices}
    click.echo(json.dumps(vmdesc, indent=2))
    return 0


def _complete_or_fail(stream: Path) -> None:
    """Read ``stream`` to its end: a truncated stream lost its trailer, it did not lack one."""
    from streams.files import open_stream
    from streams.qemu import StreamReader

    with open_stream(stream) as source:
        try:
            for _record in StreamReader(source, descriptions=_registry(), batch_pages=True):
                pass
        except TruncatedError as error:
            _fail(f"{stream}: no vmdesc trailer found, but the stream is truncated ({error}): a trailer would be at its end")


def _line_err(text: str) -> None:
    click.echo(printable(text), err=True)


@cli.command()
@click.argument("stream", type=click.Path(path_type=Path))
@click.argument("directory", type=click.Path(path_type=Path))
@click.pass_context
def extract(ctx: click.Context, stream: Path, directory: Path) -> None:
    """Unpack STREAM into the new DIRECTORY: state.json and ram/<block> files.

    state.json is the decoding 'dump --json' prints (less the content
    digests); each RAM block becomes a sparse file of the block's length
    holding its pages at their offsets.
    DIRECTORY must not exist; it appears only once extraction succeeded
    (built as DIRECTORY.incomplete-XXXXXXXX, which a killed run leaves and
    the next run removes).
    """

    def action() -> int:
        from streams.files import open_stream
        from streams.qemu.extract import extract_stream

        with open_stream(stream) as source:
            summary = extract_stream(source, directory, descriptions=_registry())
        for name, path in summary["ram_files"].items():
            _line(f"{directory / path}  ({name})")
        _line(f"{directory / 'state.json'}")
        return 0

    _run(ctx, action)


#: output format by file suffix, for ``convert`` without ``--to``
_SUFFIX_FORMATS = {".msgpack": "msgpack", ".cbor": "cbor", ".json": "json", ".jsonl": "json", ".mig": "qemu"}


@cli.command()
@click.argument("source", type=click.Path(path_type=Path))
@click.argument("target", type=click.Path(path_type=Path))
@click.option(
    "--to",
    type=click.Choice(["msgpack", "cbor", "json", "qemu"]),
    help="Output format; default: from TARGET's suffix (.msgpack .cbor .json .mig).",
)
@click.option(
    "--layout",
    type=click.Choice(["plain", "mapped-ram"]),
    help="QEMU output: lay RAM out as a plain stream or a mapped-ram file (migrate file: with mapped-ram on); "
    "default: as the input has it.",
)
@click.pass_context
def convert(ctx: click.Context, source: Path, target: Path, to: str | None, layout: str | None) -> None:
    """Convert a QEMU stream into a snapshot (msgpack, CBOR, JSON) or back.

    SOURCE is a QEMU stream (plain, xz or gzip) or a snapshot; which one is
    detected.  TARGET is replaced atomically: if anything fails it keeps its
    old content.  Only a regular file is replaced (a symlink to one is
    written through); a device node, FIFO, directory or dangling symlink is
    refused.  Converting a stream to a snapshot and back gives QEMU's bytes
    exactly.  --layout mapped-ram writes what QEMU 10.0's "migrate file:"
    writes with the mapped-ram capability on (pages at fixed offsets, a sparse
    file), --layout plain a stream without it.
    """

    def action() -> int:
        from streams.convert import convert as convert_file

        output = to or _SUFFIX_FORMATS.get(target.suffix.lower())
        if output is None:
            _fail(f"{target}: cannot tell the output format from the suffix {target.suffix!r}; use --to")
        convert_file(source, target, output, descriptions=_registry(), layout=layout)
        return 0

    _run(ctx, action)


def _report_json(path: Path, report: Any) -> dict[str, Any]:
    if isinstance(report, str):
        return {"file": str(path), "error": report}
    return {
        "file": str(path),
        "size": report.size,
        "identical": report.identical,
        "first_difference": report.first_difference,
        "raw_bytes": report.raw_bytes,
        "opaque_bytes": report.opaque_bytes,
        "unnamed_sections": len(report.unnamed),
        "ram_pages": report.ram_pages,
        "ram_zero_pages": report.ram_zero_pages,
        "sections": [
            {k: getattr(s, k) for k in ("section_id", "idstr", "kind", "instance_id", "version", "source", "named_bytes",
                                        "opaque_bytes", "raw_bytes", "fallback", "unnamed", "raw_reason")}
            for s in report.sections
        ],
    }


def _print_report(path: Path, report: Any) -> None:
    verdict = "identical" if report.identical else f"DIFFERS at {report.first_difference:#x}"
    unnamed = report.unnamed
    failures = f"; {len(unnamed)} section(s) NOT NAMED by our descriptions" if unnamed else ""
    _line(
        f"{path}: {report.size} bytes, re-encoded {verdict}; {report.raw_bytes} bytes kept raw, "
        f"{report.opaque_bytes} bytes in opaque vmdesc fields{failures}"
    )
    for s in report.sections:
        if s.kind in ("PART", "END"):
            continue
        opaque = f"  opaque {s.opaque_bytes:>8}" if s.opaque_bytes else ""
        _line(f"  {s.idstr:<40} {s.source:<8} named {s.named_bytes:>8}  raw {s.raw_bytes:>8}{opaque}")
        if s.unnamed:
            _line(f"    NOT NAMED: {s.unnamed}")
        elif s.fallback:
            _line(f"    our description was set aside: {s.fallback}")
        if s.raw_reason and s.raw_reason != "no description" and not s.unnamed:
            _line(f"    kept raw: {s.raw_reason}")


def main() -> None:
    """Entry point of the ``vmstate`` script."""
    cli(obj={})
