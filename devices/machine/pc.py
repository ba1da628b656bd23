"""Small PC platform sections (hw/pci, hw/audio/pcspk.c, hw/i386, hw/i2c)."""

from __future__ import annotations

import attrs

from vmstate import field, state
from vmstate.kinds import INT32, INT32_EQUAL, UINT8, UINT32, varray


@state(name="PCIBUS", version=1, minimum_version=1)
class PciBus:
    """QEMU's ``vmstate_pcibus`` (hw/pci/pci.c): interrupt line counts.

    ``irq_count`` is a ``VMSTATE_VARRAY_INT32`` sized by ``nirq``: 4 on i440fx, 8 on q35.
    """

    nirq: int = field(INT32_EQUAL, default=4)
    irq_count: list[int] = field(varray(INT32, "nirq"), default=attrs.Factory(lambda: [0] * 4))


@state(name="PCIHost", version=1, minimum_version=1)
class PciHost:
    """QEMU's ``vmstate_pcihost`` (hw/pci/pci_host.c): the config address latch."""

    config_reg: int = field(UINT32)


@state(name="pcspk", version=1, minimum_version=1)
class Pcspk:
    """QEMU's ``vmstate_spk`` (hw/audio/pcspk.c)."""

    data_on: int = field(UINT8)
    dummy_refresh_clock: int = field(UINT8)


@state(name="port92", version=1)
class Port92:
    """QEMU's ``vmstate_port92_isa`` (hw/i386/pc.c): the fast A20 gate port."""

    outport: int = field(UINT8)


@state(name="i2c_bus", version=1, minimum_version=1)
class I2cBus:
    """QEMU's ``vmstate_i2c_bus`` (hw/i2c/core.c)."""

    saved_address: int = field(UINT8)


@state(name="acpi_build", version=1, minimum_version=1)
class AcpiBuild:
    """QEMU's ``vmstate_acpi_build`` (hw/i386/acpi-build.c): tables patched flag."""

    patched: int = field(UINT8)
