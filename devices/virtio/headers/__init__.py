"""Device headers and config fields that cross the guest boundary in device byte order.

Patches 14-20 of the 2.2 cross-endian series switched each device to the
virtio accessors: virtio-net headers and control payloads, balloon page
frame numbers and stats, virtio-blk requests and config, virtio-scsi
requests/responses/events, virtio-serial control messages and config, and
the virtio-9p config header.  Each class here is one such structure with
``unpack(subject, buf, offset=0)`` and ``pack(subject)``; the byte order comes
from ``is_big_endian(subject)``.  Two structures never follow the device:
the balloon config (little-endian by the balloon spec, hw/virtio/virtio-balloon.c)
and 9P protocol messages (little-endian by 9P2000.L) — those take no subject.
A short or bad buffer raises our ``DecodeError`` family with ``offset`` (in
``buf``) and ``path`` (the structure, then the field) set.

One module per device (``net``, ``blk``, ``scsi``, ``serial``, ``balloon``,
``p9``) over a shared base (``_fixed``); everything is importable from here.
"""

from __future__ import annotations

from .balloon import *  # noqa: F403
from .balloon import __all__ as _balloon_all
from .blk import *  # noqa: F403
from .blk import __all__ as _blk_all
from .net import *  # noqa: F403
from .net import __all__ as _net_all
from .p9 import *  # noqa: F403
from .p9 import __all__ as _p9_all
from .scsi import *  # noqa: F403
from .scsi import __all__ as _scsi_all
from .serial import *  # noqa: F403
from .serial import __all__ as _serial_all

__all__ = [*_net_all, *_blk_all, *_scsi_all, *_serial_all, *_balloon_all, *_p9_all]
