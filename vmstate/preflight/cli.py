"""``vmstate preflight``: will this stream load on that QEMU, and if not, why, in QEMU's words.

Exit status 0: it loads; 1: the destination will refuse it; 2: trouble
(a bad stream or profile, a destination that does not run).
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path

import click

from ..cli_support import debug_of, guarded
from ..text import printable
from .profile import Profile
from .rules import Verdict

__all__ = ["preflight"]

_PROG = "vmstate preflight"


def _program_name(argv: tuple[str, ...]) -> str:
    """The name QEMU prefixes its lines with: its binary's, even behind a wrapper."""
    names = [os.path.basename(a) for a in argv]
    return next((n for n in names if n.startswith("qemu-system-")), names[0] if names else "qemu")


@click.command(context_settings={"help_option_names": ["-h", "--help"], "ignore_unknown_options": True})
@click.argument("stream", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--qemu", "qemu_command", metavar="CMD",
              help="The destination QEMU: a binary or a command line that runs one (split like a shell).")
@click.option("--profile", "profile_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Use a saved destination profile instead of running QEMU.")
@click.option("--save-profile", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the destination profile learned with --qemu to this file.")
@click.option("--json", "as_json", is_flag=True, help="Print the verdict as JSON.")
@click.argument("qemu_args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def preflight(ctx: click.Context, stream: Path, qemu_command: str | None, profile_file: Path | None,
              save_profile: Path | None, as_json: bool, qemu_args: tuple[str, ...]) -> None:
    """Predict whether the destination QEMU will load STREAM, and if not, why.

    Give the destination as it would be started: vmstate preflight STREAM --qemu qemu-system-x86_64 -- -M
    pc-i440fx-7.2 -m 16 -device virtio-net-pci. Its lines are QEMU's own messages, then our byte offset, section
    and field path, and a fix. Exit 0: it loads; 1: it will be refused; 2: trouble.
    """

    reading: list[Path] = []  # the file an error is about: the profile, then the stream

    def action() -> int:
        if profile_file is not None:
            reading.append(profile_file)
        profile = _profile(qemu_command, profile_file, qemu_args)
        if save_profile is not None:
            _save(profile, save_profile)
        from devices import DEFAULT_REGISTRY
        from streams.files import open_stream

        from .rules import predict

        reading.append(stream)
        with open_stream(stream) as source:
            verdict = predict(source, profile, descriptions=DEFAULT_REGISTRY)
        _print(stream, profile, verdict, as_json)
        return 0 if verdict.loads else 1

    sys.exit(guarded(_PROG, action, debug=debug_of(ctx), file=lambda: reading[-1] if reading else None))


def _profile(qemu_command: str | None, profile_file: Path | None, qemu_args: tuple[str, ...]) -> Profile:
    if (qemu_command is None) == (profile_file is None):
        raise click.UsageError("give the destination: either --qemu CMD [-- QEMU_ARGS...] or --profile FILE")
    if profile_file is not None:
        if qemu_args:
            raise click.UsageError("QEMU_ARGS go with --qemu; a profile already holds the destination's command line")
        return Profile.load(profile_file)
    from .learn import learn_profile

    assert qemu_command is not None
    return learn_profile(shlex.split(qemu_command), list(qemu_args))


def _save(profile: Profile, path: Path) -> None:
    from streams.snapshots._atomic import atomic_write

    with atomic_write(path) as out:
        out.write(json.dumps(profile.to_json(), indent=1, sort_keys=True).encode() + b"\n")


def _print(stream: Path, profile: Profile, verdict: Verdict, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"stream": str(stream), "destination": {"qemu": profile.qemu, "argv": list(profile.argv),
                                                                      "machine": profile.machine},
                               "loads": verdict.loads, "refusals": [r.to_json() for r in verdict.refusals],
                               "unchecked": list(verdict.unchecked), "sections_checked": verdict.sections_checked,
                               "ram_blocks_checked": verdict.ram_blocks_checked}, indent=2))
        return
    where = f"{profile.qemu}, machine {profile.machine or '(none)'}"
    if verdict.loads:
        click.echo(printable(f"{stream}: loads on {where}"))
    else:
        count = len(verdict.refusals)
        click.echo(printable(f"{stream}: will be refused by {where} ({count} reason{'s' if count != 1 else ''})"))
    program = _program_name(profile.argv)
    for index, refusal in enumerate(verdict.refusals):
        if index == 1:
            click.echo("then, once that is fixed:")
        for line in refusal.qemu_lines:
            click.echo(printable(f"{program}: {line}"))
        path = f" ({refusal.path})" if refusal.path else ""
        click.echo(printable(f"  at {refusal.offset:#x} in {refusal.section}{path}: {refusal.rule}"))
        click.echo(printable(f"  fix: {refusal.fix}"))
    click.echo(f"checked: {verdict.sections_checked} sections, {verdict.ram_blocks_checked} RAM blocks")
    for note in verdict.unchecked:
        click.echo(printable(f"not checked: {note}"))
