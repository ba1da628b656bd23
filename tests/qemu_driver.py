"""Drive a real QEMU over QMP: load a stream incoming, then migrate it out again."""

from __future__ import annotations

import contextlib
import subprocess
import time
from pathlib import Path

__all__ = ["load_and_resave"]

_TIMEOUT_S = 60


def _wait_for(qmp, states: tuple[str, ...], deadline: float) -> str:  # type: ignore[no-untyped-def]
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
    from qemu.qmp.legacy import QEMUMonitorProtocol

    sock = tmp_path / f"qmp-{time.monotonic_ns()}.sock"
    proc = subprocess.Popen(
        [*argv, "-incoming", "defer", "-qmp", f"unix:{sock},server=on,wait=off", "-monitor", "none"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + _TIMEOUT_S
        while not sock.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"QEMU did not start: {proc.stderr.read().decode() if proc.stderr else ''}")
            time.sleep(0.05)
        qmp = QEMUMonitorProtocol(str(sock))
        qmp.connect()
        try:
            qmp.cmd_obj({"execute": "migrate-incoming", "arguments": {"uri": f"exec:cat {stream}"}})
            status = _wait_for(qmp, ("completed", "failed"), deadline)
            if status == "completed" and resave is not None:
                qmp.cmd_obj({"execute": "migrate", "arguments": {"uri": f"exec:cat > {resave}"}})
                if _wait_for(qmp, ("completed", "failed"), deadline) != "completed":
                    raise RuntimeError("QEMU could not migrate the loaded VM out again")
            qmp.close()
        except (EOFError, ConnectionError, ExecInterruptedError):
            # QEMU exits when an incoming migration fails to load.
            proc.wait(timeout=10)
            with contextlib.suppress(Exception):
                qmp.close()  # or its __del__ raises EOFError later
            status = "failed"
        return status
    finally:
        proc.kill()
        proc.wait()
