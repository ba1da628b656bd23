"""Write fixture streams in earlier virtio format versions, from a real 2.2-layout stream.

QEMU 7.2 only writes today's versions (virtio-net 11, virtio-console 3);
older ones are still ours to load.  This script takes the real
``pc-2.2-virtio-all.mig`` and re-encodes one device section at an older
version through our own descriptions (the encoder leaves out every field
newer than the version asked for), keeping every other byte:

* ``pc-2.2-virtio-console-v2.mig``: virtio-serial version 2 (no popped elements);
* ``pc-2.2-virtio-net-v10.mig``, ``-v7``, ``-v4``: virtio-net before has_ufo,
  before the u8 promisc/allmulti and MAC overflow flags, and before the MAC
  table, VLAN bitmap and vnet header flag.

Run ``python compat_fixtures/old_layouts.py`` to regenerate; the output is
deterministic.
"""

from __future__ import annotations

import sys
from pathlib import Path

import attrs

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from devices import DEFAULT_REGISTRY  # noqa: E402
from devices.virtio.net import VirtIONet  # noqa: E402
from devices.virtio.serial import VirtIOSerial, VirtIOSerialPortV2  # noqa: E402
from streams.qemu import DeviceState, SectionHeader, StreamReader, StreamWriter  # noqa: E402
from vmstate.description import Record  # noqa: E402
from vmstate.typed import from_record, to_record  # noqa: E402

SOURCE = HERE / "streams" / "pc-2.2-virtio-all.mig"


def _older(record: Record, device_cls: type, version: int) -> Record:
    """The virtio field re-expressed at ``version``: the device part re-encoded, the rest kept."""
    virtio = record.fields["virtio"]
    device = from_record(device_cls, virtio.fields["device"])
    if isinstance(device, VirtIOSerial) and version == 2:
        device.ports_v2 = [VirtIOSerialPortV2(id=p.id, guest_connected=p.guest_connected, host_connected=p.host_connected) for p in device.ports]
    device_record = to_record(device, version=version)
    fields = dict(virtio.fields, device=device_record)
    return Record(version=version, fields={"virtio": Record(version=version, fields=fields, subsections=virtio.subsections)})


def write_old_layout(out: Path, vmsd_name: str, device_cls: type, version: int) -> None:
    """Copy SOURCE to ``out`` with the ``vmsd_name`` section written at ``version``."""
    with open(SOURCE, "rb") as source, open(out, "wb") as sink:
        writer = StreamWriter(sink)
        for record in StreamReader(source, descriptions=DEFAULT_REGISTRY):
            ours = getattr(record, "idstr", None) or ""
            if isinstance(record, SectionHeader) and ours.endswith("/" + vmsd_name):
                record = attrs.evolve(record, version=version)
            elif isinstance(record, DeviceState) and ours.endswith("/" + vmsd_name):
                record = attrs.evolve(record, version=version, record=_older(record.record, device_cls, version))
            writer.write(record)


OLD_LAYOUTS = [
    ("pc-2.2-virtio-console-v2.mig", "virtio-console", VirtIOSerial, 2),
    ("pc-2.2-virtio-net-v10.mig", "virtio-net", VirtIONet, 10),
    ("pc-2.2-virtio-net-v7.mig", "virtio-net", VirtIONet, 7),
    ("pc-2.2-virtio-net-v4.mig", "virtio-net", VirtIONet, 4),
]


def main() -> int:
    for name, vmsd_name, device_cls, version in OLD_LAYOUTS:
        out = HERE / "streams" / name
        write_old_layout(out, vmsd_name, device_cls, version)
        print(f"wrote {out.relative_to(HERE)} ({out.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
