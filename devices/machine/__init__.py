"""State classes of the common machine devices QEMU migrates on every target."""

from .core import CpuCommon, GlobalState, Timer
from .pc import AcpiBuild, I2cBus, PciBus, PciHost, Pcspk, Port92

__all__ = ["Timer", "CpuCommon", "GlobalState", "PciBus", "PciHost", "Pcspk", "Port92", "I2cBus", "AcpiBuild"]
