"""Transport hooks of the common save/load: ``save_config``/``load_config`` and per-queue state.

QEMU's ``VirtioBusClass`` gives each transport these hooks; the layout of
what they write depends on the proxy's configuration (MSI-X vectors, PCI
Express, variable vring alignment), which the stream does not state.  Each
transport here recovers it from bytes already in the section.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Protocol

import attrs

from vmstate.description import Description, Field, Record, Struct
from vmstate.engine import decode, encode
from vmstate.errors import DecodeError, EncodeError
from vmstate.kinds import UINT16, buffer
from vmstate.limits import Limits
from vmstate.typed import description_of
from vmstate.wire import ByteReader

from .mmio import VIRTIO_MMIO_PREFIX, VirtioMmioConfig
from .pci import PCI_CONFIG_SPACE_SIZE, PciDevice, PcieDevice, is_express, msix_vectors

__all__ = ["Transport", "PciTransport", "MmioTransport", "QueueLayout", "transport_for_idstr"]

Path = tuple[str | int, ...]


@attrs.frozen
class QueueLayout:
    """What a transport adds to each queue record."""

    #: the bus has variable vring alignment (virtio-mmio): each queue carries ``align``
    vring_align: bool
    #: the PCI proxy has MSI-X: each queue carries its ``vector``
    vector: bool


class Transport(Protocol):
    """A virtio transport as the common save/load sees it."""

    name: str

    def load_config(self, reader: ByteReader, limits: Limits, path: Path) -> Record:
        """Read what the transport's ``save_config`` wrote."""

    def save_config(self, record: Record, path: Path) -> bytes:
        """Write the transport's config part back."""

    def queue_layout(self, config: Record) -> QueueLayout:
        """Per-queue transport state implied by this config."""

    def config_description(self, config: Record) -> Description | None:
        """The description of a decoded config record (None if it is unusable)."""


@lru_cache(maxsize=None)
def _pci_config_description(express: bool, vectors: int) -> Description:
    device = description_of(PcieDevice if express else PciDevice)
    fields = [Field(name="pci", kind=Struct(description=device, version=2))]
    if vectors:
        fields += [
            Field(name="msix_table", kind=buffer(16 * vectors, type_name="msix table")),
            Field(name="msix_pba", kind=buffer((vectors + 7) // 8, type_name="msix pba")),
            Field(name="config_vector", kind=UINT16),
        ]
    return Description(name="virtio-pci config", version=1, minimum_version=1, fields=tuple(fields))


class PciTransport:
    """virtio-pci: PCI device state, MSI-X table and PBA, config vector, a vector per queue."""

    name = "pci"

    def load_config(self, reader: ByteReader, limits: Limits, path: Path) -> Record:
        # The vmsd version_id field (4 bytes) precedes the config space.
        head = reader.peek(4 + PCI_CONFIG_SPACE_SIZE)
        express, vectors = False, 0
        if len(head) == 4 + PCI_CONFIG_SPACE_SIZE:
            try:
                express, vectors = is_express(head[4:]), msix_vectors(head[4:])
            except DecodeError as error:
                error.add_context(offset=reader.offset + 4, path=(*path, "pci", "config"))
                raise
        return decode(_pci_config_description(express, vectors), reader, 1, limits=limits, path=path)

    def _description_for(self, record: Record, path: Path) -> Description:
        try:
            config = record.fields["pci"].fields["config"]
            return _pci_config_description(is_express(config), msix_vectors(config))
        except (KeyError, AttributeError, DecodeError) as error:
            raise EncodeError(f"virtio-pci config record is unusable: {error}", path=path) from None

    def save_config(self, record: Record, path: Path) -> bytes:
        return encode(self._description_for(record, path), record, path=path)

    def config_description(self, config: Record) -> Description | None:
        try:
            return self._description_for(config, ())
        except EncodeError:
            return None

    def queue_layout(self, config: Record) -> QueueLayout:
        return QueueLayout(vring_align=False, vector="config_vector" in config.fields)


class MmioTransport:
    """virtio-mmio: three registers, and an ``align`` per queue."""

    name = "mmio"

    def load_config(self, reader: ByteReader, limits: Limits, path: Path) -> Record:
        return decode(description_of(VirtioMmioConfig), reader, 1, limits=limits, path=path)

    def save_config(self, record: Record, path: Path) -> bytes:
        return encode(description_of(VirtioMmioConfig), record, path=path)

    def config_description(self, config: Record) -> Description | None:
        return description_of(VirtioMmioConfig)

    def queue_layout(self, config: Record) -> QueueLayout:
        return QueueLayout(vring_align=True, vector=False)


PCI = PciTransport()
MMIO = MmioTransport()


def transport_for_idstr(idstr: str) -> Transport | None:
    """The transport a section's qdev path names, None for ones we do not model (ccw)."""
    if idstr.startswith(VIRTIO_MMIO_PREFIX):
        return MMIO
    path = idstr.rsplit("/", 1)[0]
    # PCI devices: "0000:00:02.0" (x86), "pci@800000020000000:00.0" (spapr PHB)
    if "/" in idstr and ":" in path and "." in path:
        return PCI
    return None
