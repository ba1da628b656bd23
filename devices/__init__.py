"""Device models: state classes for the sections QEMU migrates."""

from .machine import MACHINE_STATES, AcpiBuild, CpuCommon, GlobalState, I2cBus, PciBus, PciHost, Pcspk, Port92, Timer
from .registry import Registry, vmsd_name_of
from .virtio.sections import virtio_section

#: every state class and section lookup this package defines
DEFAULT_REGISTRY = Registry(
    [Timer, CpuCommon, GlobalState, PciBus, PciHost, Pcspk, Port92, I2cBus, AcpiBuild, *MACHINE_STATES],
    lookups=[virtio_section],
)

__all__ = ["Registry", "DEFAULT_REGISTRY", "vmsd_name_of"]
