"""The ``migration-diff`` command (also ``vmstate diff``).

Exit status follows diff(1): 0 no differences, 1 differences, 2 trouble
(one line on stderr with the byte offset and field path; ``--debug`` for a
traceback).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from vmstate import __version__
from vmstate.cli_support import fail, guarded

__all__ = ["migration_diff", "main"]

_COLORS = {"a": "red", "b": "green"}
_PROG = "migration-diff"


def _fail(message: str) -> NoReturn:
    fail(_PROG, message)


def _version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """``--version``, named as invoked: ``migration-diff`` or ``vmstate diff``."""
    if value and not ctx.resilient_parsing:
        click.echo(f"{ctx.command_path}, version {__version__}")
        ctx.exit()


class _Bar:
    """A progress bar on stderr per input (A, then B), shown only on a terminal."""

    def __init__(self) -> None:
        self._bar: Any = None
        self._enabled = sys.stderr.isatty()
        self._inputs = 0

    def __call__(self, position: int, size: int | None, finished: bool) -> None:
        if not self._enabled or not size:
            return
        if self._bar is None:
            label = f"reading {'AB'[min(self._inputs, 1)]}"
            self._bar = click.progressbar(length=size, label=label, file=sys.stderr, show_eta=True)
            self._bar.__enter__()
        target = size if finished else min(size, position)
        if target > self._bar.pos:
            self._bar.update(target - self._bar.pos)
        if finished:
            self.close()
            self._inputs += 1

    def close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None


def _style(color: bool):  # type: ignore[no-untyped-def]
    def style(text: str, role: str) -> str:
        if not color:
            return text
        if role == "section":
            return click.style(text, bold=True)
        return click.style(text, fg=_COLORS.get(role))

    return style


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_version,
              help="Show the version and exit.")
@click.argument("a", type=click.Path(path_type=Path))
@click.argument("b", type=click.Path(path_type=Path))
@click.option("--ignore", "ignores", multiple=True, metavar="GLOB",
              help="Leave out fields whose PATH or SECTION:PATH matches (and sections whose name matches); repeatable.")
@click.option("--section", "sections", multiple=True, metavar="GLOB",
              help="Compare only sections whose idstr (or ram/BLOCK) matches; repeatable.")
@click.option("--summary", is_flag=True, help="One line per differing section or RAM block.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON (schema in the README).")
@click.option("--color", type=click.Choice(["auto", "always", "never"]), default="auto", show_default=True)
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
def migration_diff(
    a: Path, b: Path, ignores: tuple[str, ...], sections: tuple[str, ...], summary: bool, as_json: bool,
    color: str, debug: bool,
) -> None:
    """Show field by field how migration stream or snapshot B differs from A.

    A and B may each be a QEMU migration stream (plain, xz or gzip) or a
    snapshot file in any of our codecs. Exit 0 if they are the same, 1 if
    they differ, 2 on trouble.
    """
    from .compare import DiffReport, compare_images
    from .filters import Filters
    from .image import StreamImage
    from .render import render_summary, render_text, report_to_json
    from .run import read_image
    from .sources import display_kinds

    if summary and as_json:
        _fail("--summary and --json do not combine: the JSON report has every count the summary shows")
    filters = Filters.from_globs(sections, ignores)
    bar = _Bar()
    images: list[StreamImage] = []
    reading: Path | None = None

    def read_and_compare() -> DiffReport:
        nonlocal reading
        for reading in (a, b):
            images.append(read_image(reading, filters, bar))
        reading = None
        return compare_images(images[0], images[1], filters)

    try:
        report = guarded(_PROG, read_and_compare, debug=debug, file=lambda: reading, on_error=bar.close)
    finally:
        for image in images:
            image.close()
    bar.close()
    if report.unmatched:
        globs = ", ".join(repr(g) for g in report.unmatched)
        _fail(f"nothing in A or B matches {globs} (--section matches section names, --ignore names and field paths)")
    use_color = color == "always" or (color == "auto" and sys.stdout.isatty() and not as_json)
    status = 0 if report.identical else 1

    def render() -> None:
        if as_json:
            click.echo(json.dumps(report_to_json(report), indent=2))
        elif summary:
            for line in render_summary(report, _style(use_color)):
                click.echo(line, color=use_color)
        else:
            for line in render_text(report, _style(use_color), display_kinds()):
                click.echo(line, color=use_color)

    guarded(_PROG, render, debug=debug, broken_pipe_status=status)
    sys.exit(status)


def main() -> None:
    """Entry point of the ``migration-diff`` script."""
    migration_diff()
