"""State classes of the common machine devices QEMU migrates on every target.

The names below are imported when first used (``vmstate._lazy``): importing
one module of this package (``devices.machine.core``) does not import the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vmstate import _lazy

if TYPE_CHECKING:
    from ._states import MACHINE_STATES
    from .core import CpuCommon, GlobalState, Timer
    from .pc import AcpiBuild, I2cBus, PciBus, PciHost, Pcspk, Port92
    from .x86_cpu import X86CpuState

_NAMES = _lazy.exports({
    ".core": ("Timer", "CpuCommon", "GlobalState"),
    ".pc": ("PciBus", "PciHost", "Pcspk", "Port92", "I2cBus", "AcpiBuild"),
    ".x86_cpu": ("X86CpuState",),
    "._states": ("MACHINE_STATES",),
})

__all__ = [
    "Timer", "CpuCommon", "GlobalState", "PciBus", "PciHost", "Pcspk", "Port92", "I2cBus", "AcpiBuild",
    "X86CpuState", "MACHINE_STATES",
]


def __getattr__(name: str) -> Any:
    return _lazy.load(__name__, _NAMES, name)
