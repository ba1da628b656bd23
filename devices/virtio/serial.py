"""virtio-serial's own part (hw/char/virtio-serial-bus.c), section ``virtio-console``.

"virtio-serial: don't migrate the config space" (QEMU 2.2): the loader no
longer trusts the config space it receives.  The saver still writes cols,
rows and max_nr_ports for older destinations (7.2 fills them from
``get_config``, so they are in *device* byte order inside big-endian puts);
the loader reads those 8 bytes and drops them, because the device's
endianness is only known once the trailing ``virtio/device_endian``
subsection has been read.  The ports map is sized by the loader's own
``max_ports``, which we recover from the queue count: two queues per port
plus two control queues (``virtio_serial_device_realize``).
"""

from __future__ import annotations

from typing import Any

from vmstate import field, state, struct
from vmstate.description import Description
from vmstate.kinds import UINT8, UINT16, UINT32, UINT64, varray
from vmstate.typed import description_of

from .element import VirtQueueElement
from .parts import DescribedPart

__all__ = ["VirtIOSerial", "VirtIOSerialPort", "VirtIOSerialPortV2", "VIRTIO_SERIAL", "DEFAULT_MAX_PORTS"]

DEFAULT_MAX_PORTS = 31


def _elem_popped(view: Any, version: int) -> bool:
    return bool(view.elem_popped)


@state(name="virtio-serial port", version=3, minimum_version=3)
class VirtIOSerialPort:
    """One active port as version 3 writes it: id, connection state, a popped element if any."""

    id: int = field(UINT32)
    guest_connected: int = field(UINT8)
    host_connected: int = field(UINT8)
    elem_popped: int = field(UINT32)
    iov_idx: int = field(UINT32, exists=_elem_popped)
    iov_offset: int = field(UINT64, exists=_elem_popped)
    element: VirtQueueElement = field(struct(VirtQueueElement), exists=_elem_popped)


@state(name="virtio-serial port v2", version=2, minimum_version=2)
class VirtIOSerialPortV2:
    """One active port as version 2 wrote it (before a popped element could migrate)."""

    id: int = field(UINT32)
    guest_connected: int = field(UINT8)
    host_connected: int = field(UINT8)


def _version_2(view: Any, version: int) -> bool:
    return version == 2


@state(name="virtio-console device", version=3, minimum_version=1)
class VirtIOSerial:
    """The serial bus state: which ports exist and their connection state.

    Version 1 had no device part at all; version 2 no popped elements.
    """

    #: the config space, written for old destinations and ignored on load
    config_cols: int = field(UINT16, since_version=2)
    config_rows: int = field(UINT16, since_version=2)
    config_max_nr_ports: int = field(UINT32, since_version=2)
    #: one bit per port id in use; its length comes from the loader's max_ports
    ports_map: list[int] = field(varray(UINT32, "ports_map_words"), since_version=2)
    nr_active_ports: int = field(UINT32, since_version=2)
    ports: list[VirtIOSerialPort] = field(varray(struct(VirtIOSerialPort), "nr_active_ports"), since_version=3)
    ports_v2: list[VirtIOSerialPortV2] = field(varray(struct(VirtIOSerialPortV2), "nr_active_ports"), exists=_version_2)


def max_ports_from_queues(num_queues: int) -> int:
    """virtio-serial's ``max_ports`` from its queue count (2 per port + 2 control queues)."""
    return max(1, num_queues // 2 - 1)


def _configure(common: dict[str, Any]) -> dict[str, Any]:
    return {"ports_map_words": (max_ports_from_queues(common["num_queues"]) + 31) // 32}


def _description(_config: dict[str, Any]) -> Description:
    return description_of(VirtIOSerial)


VIRTIO_SERIAL = DescribedPart(
    savevm_name="virtio-console", version=3, minimum_version=1, description=_description, configure=_configure,
    device_order_fields=("config_cols", "config_rows", "config_max_nr_ports"),
)
