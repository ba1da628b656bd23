"""virtio-serial headers and config fields in device byte order (hw/char/virtio-serial-bus.c)."""

from __future__ import annotations

import attrs

from ._fixed import _Fixed, _pair, _u

__all__ = [
    "SerialControl", "SerialConfig", "VIRTIO_CONSOLE_DEVICE_READY", "VIRTIO_CONSOLE_PORT_ADD",
    "VIRTIO_CONSOLE_PORT_REMOVE", "VIRTIO_CONSOLE_PORT_READY", "VIRTIO_CONSOLE_CONSOLE_PORT",
    "VIRTIO_CONSOLE_RESIZE", "VIRTIO_CONSOLE_PORT_OPEN", "VIRTIO_CONSOLE_PORT_NAME",
]


VIRTIO_CONSOLE_DEVICE_READY = 0
VIRTIO_CONSOLE_PORT_ADD = 1
VIRTIO_CONSOLE_PORT_REMOVE = 2
VIRTIO_CONSOLE_PORT_READY = 3
VIRTIO_CONSOLE_CONSOLE_PORT = 4
VIRTIO_CONSOLE_RESIZE = 5
VIRTIO_CONSOLE_PORT_OPEN = 6
VIRTIO_CONSOLE_PORT_NAME = 7


@attrs.frozen(kw_only=True)
class SerialControl(_Fixed):
    """``struct virtio_console_control`` (8 bytes): port id, event, value."""

    _CODECS = _pair("IHH")

    id: int = attrs.field(validator=_u(32))
    event: int = attrs.field(validator=_u(16))
    value: int = attrs.field(default=0, validator=_u(16))


@attrs.frozen(kw_only=True)
class SerialConfig(_Fixed):
    """``struct virtio_console_config`` (12 bytes).

    The migration stream still carries cols/rows/max_nr_ports of this
    device-order config, written with big-endian puts and skipped on load
    (docs: virtio-migration-format.md §4).
    """

    _CODECS = _pair("HHII")

    cols: int = attrs.field(default=0, validator=_u(16))
    rows: int = attrs.field(default=0, validator=_u(16))
    max_nr_ports: int = attrs.field(default=1, validator=_u(32))
    emerg_wr: int = attrs.field(default=0, validator=_u(32))
