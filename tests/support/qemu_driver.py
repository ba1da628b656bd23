"""Drive a real QEMU over QMP: load a stream incoming, then migrate it out again.

The QMP plumbing (start QEMU, connect, run commands, wait for a migration)
is ``compat_fixtures/examples/generate.py``'s: this only adds the incoming
side and QEMU's way of failing a load (it exits).
"""

from __future__ import annotations

import importlib.util
import time
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from .paths import ROOT

__all__ = ["load_and_query", "load_and_resave", "qmp_tools"]

_TIMEOUT_S = 60


@cache
def qmp_tools() -> ModuleType:
    """``compat_fixtures/examples/generate.py``: ``vm``, ``command``, ``migrate_to``."""
    spec = importlib.util.spec_from_file_location("examples_generate", ROOT / "compat_fixtures" / "examples" / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _wait_for(qmp: Any, states: tuple[str, ...], deadline: float) -> str:
    status = "none"
    while time.monotonic() < deadline:
        status = qmp.cmd_obj({"execute": "query-migrate"})["return"].get("status", "none")
        if status in states:
            return status
        time.sleep(0.1)
    return status


def load_and_resave(argv: list[str], stream: Path, tmp_path: Path, resave: Path | None = None) -> str:
    """Start ``argv`` with ``-incoming defer``, load ``stream``; optionally migrate into ``resave``.

    Returns QEMU's final incoming status: ``completed`` or ``failed``.
    """
    from qemu.qmp import ExecInterruptedError

    tools = qmp_tools()
    with tools.vm([*argv, "-incoming", "defer"], tmp_path) as qmp:
        deadline = time.monotonic() + _TIMEOUT_S
        try:
            qmp.cmd_obj({"execute": "migrate-incoming", "arguments": {"uri": f"exec:cat {stream}"}})
            status = _wait_for(qmp, ("completed", "failed"), deadline)
            if status == "completed" and resave is not None:
                tools.migrate_to(qmp, resave)
        except (EOFError, ConnectionError, ExecInterruptedError):
            return "failed"  # QEMU exits when an incoming migration fails to load
    return status


def load_and_query(argv: list[str], stream: Path, tmp_path: Path,
                   commands: list[dict[str, Any]], resave: Path | None = None) -> tuple[str, list[Any]]:
    """Load ``stream`` into ``argv`` started with ``-incoming defer``; once completed, run QMP ``commands``.

    Returns QEMU's final incoming status and each command's ``return`` (none unless ``completed``);
    with ``resave``, the loaded state is then migrated out into that file.
    """
    from qemu.qmp import ExecInterruptedError

    tools = qmp_tools()
    answers: list[Any] = []
    with tools.vm([*argv, "-incoming", "defer"], tmp_path) as qmp:
        deadline = time.monotonic() + _TIMEOUT_S
        try:
            qmp.cmd_obj({"execute": "migrate-incoming", "arguments": {"uri": f"exec:cat {stream}"}})
            status = _wait_for(qmp, ("completed", "failed"), deadline)
            if status == "completed":
                for command in commands:
                    reply = qmp.cmd_obj(command)
                    if "error" in reply:
                        raise AssertionError(f"{command['execute']}: {reply['error']}")
                    answers.append(reply["return"])
                if resave is not None:
                    tools.migrate_to(qmp, resave)
        except (EOFError, ConnectionError, ExecInterruptedError):
            return "failed", []
    return status, answers
