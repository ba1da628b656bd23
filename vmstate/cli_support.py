"""What every command of ours does with a failure: one line on stderr, exit status 2.

``vmstate``, ``vmstate compat`` and ``migration-diff`` share it: a
``VMStateError`` (bad input, with offset and field path) or an ``OSError``
(named by its file) becomes ``PROG: error: MESSAGE`` with what came from the
input escaped; ``--debug`` shows the traceback instead.  A reader that went
away (``| head``) is no failure of ours.
"""

from __future__ import annotations

import sys
import traceback
from typing import Callable, NoReturn, TypeVar

import click

from .errors import VMStateError
from .text import printable

__all__ = ["fail", "error_line", "guarded", "debug_of"]

T = TypeVar("T")


def fail(prog: str, message: str) -> NoReturn:
    """Print ``PROG: error: MESSAGE`` (escaped) on stderr and exit 2."""
    click.echo(f"{prog}: error: {printable(message)}", err=True)
    sys.exit(2)


def error_line(error: VMStateError | OSError, file: object = None) -> str:
    """The message of an expected failure; ``file`` (the input being read) names where, if the error does not."""
    if isinstance(error, OSError):
        return f"{error.filename or file or ''}: {error.strerror or error}".lstrip(": ")
    return f"{file}: {error}" if file is not None else str(error)


def debug_of(ctx: click.Context) -> bool:
    """Whether ``vmstate --debug`` was given (the root command keeps it in its ``obj``)."""
    root = ctx.find_root().obj
    return isinstance(root, dict) and bool(root.get("debug"))


def guarded(
    prog: str,
    action: Callable[[], T],
    *,
    debug: bool,
    file: Callable[[], object] = lambda: None,
    on_error: Callable[[], None] = lambda: None,
    broken_pipe_status: int = 0,
) -> T:
    """Run ``action``; an expected failure ends the process with one line and exit 2.

    ``file`` tells which input was being read when it failed; ``on_error``
    runs first (a progress bar to close).  A closed stdout exits with
    ``broken_pipe_status`` and nothing on stderr.
    """
    try:
        return action()
    except BrokenPipeError:
        sys.stderr.close()
        sys.exit(broken_pipe_status)
    except (VMStateError, OSError) as error:
        on_error()
        if debug:
            traceback.print_exc()
            sys.exit(2)
        fail(prog, error_line(error, file()))
