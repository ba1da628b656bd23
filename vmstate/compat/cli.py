"""``vmstate compat``: schema export, static diff, fixture check and fixture recording.

Exit status follows diff(1): 0 compatible, 1 incompatible, 2 error (one
line on stderr; ``vmstate --debug compat ...`` shows the traceback).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
import click

from ..cli_support import debug_of, guarded
from ..text import printable_lines

__all__ = ["TODAY", "compat"]

#: a schema argument of ``diff`` that stands for today's descriptions
TODAY = "@today"


def _run(ctx: click.Context, action: Callable[[], int]) -> None:
    """Run a subcommand: expected failures become one line on stderr and exit 2."""
    sys.exit(guarded("vmstate", action, debug=debug_of(ctx)))


@click.group("compat", context_settings={"help_option_names": ["-h", "--help"]})
def compat() -> None:
    """Check that migration keeps working across versions of the descriptions.

    \b
    schema   export every description as one JSON schema file
    diff     compare two schema files (ours or QEMU -dump-vmstate): what breaks, which way
    check    load, compare and rewrite every fixture of a directory with today's code
    record   add new fixtures and goldens (recorded ones are never changed)
    """


@compat.command("schema")
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Write to FILE instead of stdout.")
@click.option("--force", is_flag=True, help="Replace an existing FILE (a baseline changes on purpose only).")
@click.pass_context
def schema(ctx: click.Context, output: Path | None, force: bool) -> None:
    """Export every description (all devices, versions, subsections) as JSON."""

    def action() -> int:
        from .export import schema_text, write_schema

        if output is None:
            click.echo(schema_text(), nl=False)
        else:
            write_schema(output, force=force)
            click.echo(f"wrote {output}", err=True)
        return 0

    _run(ctx, action)


@compat.command("diff")
@click.argument("old")
@click.argument("new")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--fail-on", type=click.Choice(["error", "warning"]), default="warning", show_default=True,
              help="Lowest severity that makes the result incompatible (exit 1).")
@click.option("--no-info", is_flag=True, help="Leave compatible (info) findings out of the text report.")
@click.pass_context
def diff(ctx: click.Context, old: str, new: str, as_json: bool, fail_on: str, no_info: bool) -> None:
    """Compare two schemas and report what breaks migration, in which direction.

    OLD and NEW are each our schema file ('vmstate compat schema'), a QEMU
    '-dump-vmstate' file (recognised from its content), or @today for
    today's descriptions.  'old->new' is new code loading old streams,
    'new->old' is old code loading new streams.
    """

    def action() -> int:
        from .export import export_schema
        from .findings import Severity
        from .model import SchemaSet
        from .rules import compare_sets
        from .sources import load_schema, schema_from_json

        def side(argument: str) -> SchemaSet:
            return schema_from_json(export_schema(), TODAY) if argument == TODAY else load_schema(argument)

        report = compare_sets(side(old), side(new))
        severity: Severity = "error" if fail_on == "error" else "warning"
        if as_json:
            click.echo(json.dumps(report.as_json(severity), indent=1))
        else:
            click.echo(printable_lines(report.render(severity, show_info=not no_info)))
        return report.exit_code(severity)

    _run(ctx, action)


@compat.command("check")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("-v", "--verbose", is_flag=True, help="List every fixture, not only those that fail.")
@click.option("--only", multiple=True, help="Check only fixtures whose name contains this (repeatable).")
@click.pass_context
def check(ctx: click.Context, directory: Path, as_json: bool, verbose: bool, only: tuple[str, ...]) -> None:
    """Load every fixture of DIRECTORY, compare it with its golden, write it back.

    Exit 0 if all load to their goldens and are written back byte for byte,
    1 if any is not, 2 if the check cannot judge (no golden, unreadable file,
    a recorded fixture rewritten or deleted).
    """

    def action() -> int:
        from .dynamic import check_fixtures

        report = check_fixtures(directory, only=only or None)
        click.echo(json.dumps(report.as_json(), indent=1) if as_json else printable_lines(report.render(verbose=verbose)))
        return report.exit_code

    _run(ctx, action)


def _versions(values: tuple[str, ...]) -> dict[str, int]:
    out = {}
    for value in values:
        name, _, version = value.partition("=")
        if not name or not version.isdigit():
            raise click.BadParameter(f"{value!r} is not VMSD=VERSION", param_hint="--at-version")
        out[name] = int(version)
    return out


@compat.command("record")
@click.argument("directory", type=click.Path(path_type=Path))
@click.argument("streams", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", "names", multiple=True, help="File name in DIRECTORY/streams (one per stream; default: its own).")
@click.option("--at-version", "at_version", multiple=True, metavar="VMSD=VERSION",
              help="Record a copy with this section written at an older version by today's code.")
@click.option("--origin", default="recorded", show_default=True, help="Where the bytes come from (e.g. 'qemu 7.2').")
@click.option("--adopt", is_flag=True, help="Add fixtures that already have goldens to the ledger, unchanged.")
@click.option("--only", multiple=True, help="With --adopt: only fixtures whose name contains this (repeatable).")
@click.pass_context
def record(ctx: click.Context, directory: Path, streams: tuple[Path, ...], names: tuple[str, ...],
           at_version: tuple[str, ...], origin: str, adopt: bool, only: tuple[str, ...]) -> None:
    """Add STREAMS to DIRECTORY as new fixtures with goldens from today's decoding.

    Refuses (exit 2) to overwrite a fixture or golden, and to record a stream
    that today's code does not write back identically.
    """
    versions = _versions(at_version)

    def action() -> int:
        from .record import adopt_fixtures, record_fixtures

        if adopt == bool(streams):
            raise click.UsageError("give STREAMS to record, or --adopt alone")
        if adopt:
            entries = adopt_fixtures(directory, origin="adopted" if origin == "recorded" else origin,
                                     only=only or None)
        else:
            entries = record_fixtures(directory, list(streams), names=list(names) or None, origin=origin,
                                      at_version=versions or None)
        for entry in entries:
            click.echo(f"recorded {entry.fixture} and {entry.golden}")
        if not entries:
            click.echo("nothing to record")
        return 0

    _run(ctx, action)
