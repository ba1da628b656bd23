"""The ``vmstate`` command: dump and check QEMU migration streams.

Errors are one line on stderr with the byte offset and field path, exit
status 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Callable, NoReturn

import click

from . import __version__
from .errors import VMStateError

__all__ = ["main", "cli"]


def _fail(message: str) -> NoReturn:
    click.echo(f"vmstate: error: {message}", err=True)
    sys.exit(2)


def _run(ctx: click.Context, action: Callable[[], int]) -> None:
    """Run a subcommand, turning expected failures into one line and exit 2."""
    try:
        code = action()
    except VMStateError as error:
        if ctx.obj.get("debug"):
            raise
        _fail(str(error))
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): not an error of ours.
        sys.stderr.close()
        sys.exit(0)
    except OSError as error:
        if ctx.obj.get("debug"):
            raise
        _fail(f"{error.filename or ''}: {error.strerror or error}".lstrip(": "))
    sys.exit(code)


def _registry() -> Any:
    from devices import DEFAULT_REGISTRY

    return DEFAULT_REGISTRY


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vmstate")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Decode, check and compare QEMU live-migration streams."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


@cli.command()
@click.argument("stream", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the decoding as JSON.")
@click.pass_context
def dump(ctx: click.Context, stream: Path, as_json: bool) -> None:
    """Print a stream's sections field by field (RAM summarised per block)."""

    def action() -> int:
        from streams.qemu import StreamReader, summarize
        from streams.qemu.files import open_stream

        with open_stream(stream) as source:
            summary = summarize(StreamReader(source, descriptions=_registry()))
        if as_json:
            click.echo(json.dumps(summary, indent=2))
        else:
            _print_summary(summary)
        return 0

    _run(ctx, action)


def _print_value(name: str, value: Any, indent: str) -> None:
    if isinstance(value, dict) and "fields" in value:
        click.echo(f"{indent}{name}: (v{value['version']})")
        _print_fields(value, indent + "  ")
    elif isinstance(value, list) and value and isinstance(value[0], dict):
        for i, item in enumerate(value):
            _print_value(f"{name}[{i}]", item, indent)
    else:
        text = json.dumps(value)
        click.echo(f"{indent}{name}: {text if len(text) <= 100 else text[:97] + '...'}")


def _print_fields(record: dict[str, Any], indent: str) -> None:
    for name, value in record["fields"].items():
        _print_value(name, value, indent)
    for name, sub in record.get("subsections", {}).items():
        click.echo(f"{indent}subsection {name} (v{sub['version']})")
        _print_fields(sub, indent + "  ")


def _print_summary(summary: dict[str, Any]) -> None:
    click.echo(f"QEMU stream, file version {summary.get('file_version')}, machine {summary.get('machine', '(no configuration section)')}")
    click.echo(f"footers: {'yes' if summary['footers'] else 'no'}, vmdesc: {'yes' if summary['vmdesc'] else 'no'}")
    for block in summary["ram"]:
        click.echo(f"ram {block['name']}: {block['length']:#x} bytes, {block['pages']} pages, {block['zero_pages']} zero pages")
    for section in summary["sections"]:
        click.echo(
            f"[{section['section_id']}] {section['idstr']} instance {section['instance_id']} v{section['version']}"
            f" ({section.get('source')}, {section.get('size')} bytes)"
        )
        if section.get("source") == "raw":
            click.echo(f"  raw: {section['size']} bytes ({section['reason']})")
        else:
            _print_fields(section, "  ")


@cli.command()
@click.argument("streams", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def check(ctx: click.Context, streams: tuple[Path, ...], as_json: bool) -> None:
    """Decode each stream fully, re-encode it and compare byte for byte.

    Exit 0 if all re-encode identically, 1 if any does not, 2 if one cannot be read.
    """

    def action() -> int:
        from streams.qemu import check_stream
        from streams.qemu.files import open_stream

        results = []
        for path in streams:
            with open_stream(path) as source, open_stream(path) as original:
                report = check_stream(source, original, descriptions=_registry())
            results.append((path, report))
        if as_json:
            click.echo(json.dumps([_report_json(p, r) for p, r in results], indent=2))
        else:
            for path, report in results:
                _print_report(path, report)
        return 0 if all(r.identical for _, r in results) else 1

    _run(ctx, action)


def _report_json(path: Path, report: Any) -> dict[str, Any]:
    return {
        "file": str(path),
        "size": report.size,
        "identical": report.identical,
        "first_difference": report.first_difference,
        "raw_bytes": report.raw_bytes,
        "ram_pages": report.ram_pages,
        "ram_zero_pages": report.ram_zero_pages,
        "sections": [
            {k: getattr(s, k) for k in ("section_id", "idstr", "kind", "instance_id", "version", "source", "named_bytes", "raw_bytes", "fallback")}
            for s in report.sections
        ],
    }


def _print_report(path: Path, report: Any) -> None:
    verdict = "identical" if report.identical else f"DIFFERS at {report.first_difference:#x}"
    click.echo(f"{path}: {report.size} bytes, re-encoded {verdict}; {report.raw_bytes} bytes kept raw")
    for s in report.sections:
        if s.kind in ("PART", "END"):
            continue
        click.echo(f"  {s.idstr:<40} {s.source:<8} named {s.named_bytes:>8}  raw {s.raw_bytes:>8}")
        if s.fallback:
            click.echo(f"    our description was set aside: {s.fallback}")


def main() -> None:
    """Entry point of the ``vmstate`` script."""
    cli(obj={})


