"""Device classes whose own part is a description (QEMU 7.2's ``VirtioDeviceClass.vmsd``).

Some devices need facts of their own configuration that QEMU takes from
its command line (virtio-net's queue pairs, virtio-serial's port count).
A ``configure`` function recovers them from the common part already read
(the queue count follows from both) and offers them to the description's
``exists`` tests and counts as an extra scope.
"""

from __future__ import annotations

from typing import Any, Callable

import attrs

from vmstate.description import Description, Record
from vmstate.engine import decode, encode
from vmstate.errors import EncodeError
from vmstate.wire import ByteReader

from .save_load import DeviceContext

__all__ = ["DescribedPart", "NoPart"]

Configure = Callable[[dict[str, Any]], dict[str, Any]]


def _nothing(_common: dict[str, Any]) -> dict[str, Any]:
    return {}


@attrs.frozen(kw_only=True)
class DescribedPart:
    """A device class whose save/load is one description (net, balloon, serial's port list)."""

    savevm_name: str
    version: int
    minimum_version: int
    #: the device part's description for a given recovered configuration
    description: Callable[[dict[str, Any]], Description]
    configure: Configure = _nothing
    #: integer fields QEMU fills in the *device's* byte order before a big-endian put (virtio-serial's
    #: config space, from ``get_config``): their bytes swap when ``device_endian`` flips
    device_order_fields: tuple[str, ...] = ()

    def part_description(self, common: dict[str, Any]) -> Description:
        """The device part's description for a section whose common fields are ``common``."""
        return self.description(self.configure(common))

    def _scopes(self, context: DeviceContext) -> tuple[dict[str, Any], ...]:
        return (context.common, self.configure(context.common))

    def load(self, reader: ByteReader, context: DeviceContext) -> Record:
        scopes = self._scopes(context)
        return decode(
            self.description(scopes[1]), reader, context.version, limits=context.limits, path=context.path, scopes=scopes
        )

    def save(self, record: Record | None, context: DeviceContext) -> bytes:
        scopes = self._scopes(context)
        if record is None:
            raise EncodeError(f"{self.savevm_name} needs a device part", path=context.path)
        return encode(self.description(scopes[1]), record, path=context.path, scopes=scopes)

    def describe(self) -> dict[str, Any]:
        from vmstate.schema import description_to_json

        return description_to_json(self.description({}), _top=False)


@attrs.frozen(kw_only=True)
class NoPart:
    """A device class with no state beyond the common part (virtio-rng, virtio-scsi)."""

    savevm_name: str
    version: int = 1
    minimum_version: int = 1

    def load(self, reader: ByteReader, context: DeviceContext) -> None:
        return None

    def save(self, record: Record | None, context: DeviceContext) -> bytes:
        if record is not None:
            raise EncodeError(f"{self.savevm_name} has no device part", path=context.path)
        return b""

    def describe(self) -> None:
        return None
