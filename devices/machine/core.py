"""Target-independent sections: ``timer``, ``cpu_common``, ``globalstate``."""

from __future__ import annotations

from vmstate import field, state
from vmstate.kinds import INT64, UINT32, buffer, unused


@state(name="timer", version=2, minimum_version=1)
class Timer:
    """QEMU's ``vmstate_timers`` (softmmu/cpu-timers.c): guest clock offsets."""

    cpu_ticks_offset: int = field(INT64)
    #: the removed ``dummy`` field, still sent as 8 zero bytes
    unused: bytes = field(unused(8))
    cpu_clock_offset: int = field(INT64, since_version=2)


@state(name="cpu_common", version=1, minimum_version=1)
class CpuCommon:
    """QEMU's ``vmstate_cpu_common`` (cpu.c): halt state and pending interrupts."""

    halted: int = field(UINT32)
    interrupt_request: int = field(UINT32)


@state(name="globalstate", version=1, minimum_version=1)
class GlobalState:
    """QEMU's ``vmstate_globalstate`` (migration/global_state.c): the run state name."""

    size: int = field(UINT32)
    #: NUL-padded run state name, e.g. ``prelaunch`` or ``paused``
    runstate: bytes = field(buffer(100, text=True))

    @property
    def runstate_name(self) -> str:
        return self.runstate.split(b"\0", 1)[0].decode("ascii", "replace")
