#!/usr/bin/env python3
"""Make the README's example pair: one paused VM migrated twice, with a change in between.

``before``: a paused ``pc`` VM (no guest) with virtio-net and virtio-balloon,
migrated to a file.  ``after``: the same VM loaded from ``before`` by a new
QEMU (``-incoming``), then ``set_link net0 off`` and a balloon target of
8 MiB, migrated again.  ``-rtc clock=vm`` keeps the RTC on the stopped VM
clock, so nothing else changes between the two.  Both are xz-compressed
(the RAM is mostly zero pages).  Driven over QMP with the ``qemu.qmp``
package; needs Debian's qemu-system-x86 (7.2).

    python3 compat_fixtures/examples/generate.py [OUT_DIR]
"""

from __future__ import annotations

import contextlib
import lzma
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

QEMU = "qemu-system-x86_64"
ARGV = [
    QEMU, "-M", "pc-i440fx-7.2", "-S", "-nodefaults", "-nographic", "-m", "16", "-rtc", "clock=vm",
    "-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0,id=net0",
    "-device", "virtio-balloon-pci,id=balloon0",
]
BALLOON_TARGET = 8 << 20
TIMEOUT_S = 60


@contextlib.contextmanager
def vm(argv: list[str], workdir: Path) -> Iterator[Any]:
    """A QEMU process with a QMP connection (``qemu.qmp``'s synchronous client)."""
    from vmstate.preflight.learn import DestinationError, connect_qmp

    sock = workdir / f"qmp-{time.monotonic_ns()}.sock"
    proc = subprocess.Popen(
        [*argv, "-qmp", f"unix:{sock},server=on,wait=off", "-monitor", "none"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        try:
            qmp = connect_qmp(sock, proc, time.monotonic() + TIMEOUT_S)
        except DestinationError:
            raise RuntimeError(f"QEMU did not start: {proc.stderr.read().decode() if proc.stderr else ''}") from None
        try:
            yield qmp
        finally:
            with contextlib.suppress(Exception):  # QEMU may have exited (a failed incoming load)
                qmp.close()
    finally:
        proc.kill()
        proc.wait()
        sock.unlink(missing_ok=True)


def command(qmp: Any, execute: str, **arguments: Any) -> Any:
    """Run a QMP command; an error reply raises."""
    reply = qmp.cmd_obj({"execute": execute, "arguments": arguments} if arguments else {"execute": execute})
    if "error" in reply:
        raise RuntimeError(f"{execute}: {reply['error'].get('desc')}")
    return reply["return"]


def wait_migration(qmp: Any) -> None:
    """Wait until the current migration (in or out) completes."""
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        status = command(qmp, "query-migrate").get("status")
        if status == "completed":
            return
        if status == "failed":
            raise RuntimeError("migration failed")
        time.sleep(0.05)
    raise RuntimeError("migration did not complete")


def migrate_to(qmp: Any, target: Path) -> None:
    command(qmp, "migrate", uri=f"exec:cat > {target}")
    wait_migration(qmp)


def make_pair(out_dir: Path, workdir: Path) -> tuple[Path, Path]:
    """Write ``before.mig`` and ``after.mig`` (uncompressed) into ``out_dir``."""
    before, after = out_dir / "before.mig", out_dir / "after.mig"
    with vm(ARGV, workdir) as qmp:
        migrate_to(qmp, before)
    with vm([*ARGV, "-incoming", "defer"], workdir) as qmp:
        command(qmp, "migrate-incoming", uri=f"exec:cat {before}")
        wait_migration(qmp)
        command(qmp, "set_link", name="net0", up=False)
        command(qmp, "balloon", value=BALLOON_TARGET)
        migrate_to(qmp, after)
    return before, after


def main(argv: list[str]) -> int:
    out_dir = Path(argv[0]) if argv else Path(__file__).resolve().parent
    with tempfile.TemporaryDirectory() as tmp:
        for path in make_pair(Path(tmp), Path(tmp)):
            target = out_dir / f"pc-net-balloon-{path.stem}.mig.xz"
            target.write_bytes(lzma.compress(path.read_bytes(), preset=9))
            print(f"{target}: {target.stat().st_size} bytes ({path.stat().st_size} uncompressed)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
