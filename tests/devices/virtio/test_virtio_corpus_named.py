"""Every virtio section of every real stream is typed: 0 raw bytes, 0 opaque bytes (issue 12, part 1).

Which sections are virtio devices is QEMU's word, not ours: a section whose
vmsd (in QEMU 7.2's ``-dump-vmstate``) has a ``virtio`` field.  So a virtio
device we do not model cannot slip past as "not ours".
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from devices import DEFAULT_REGISTRY
from devices.virtio import DEVICE_CLASSES
from streams.files import open_stream
from streams.qemu import check_stream
from tests.support.paths import ROOT
from tests.support.streams import WITHOUT_VIRTIO

DUMP = ROOT / "compat_fixtures" / "dump-vmstate" / "x86_64-pc.json"
#: QEMU 7.2 virtio vmsds no stream here can hold, and why
CANNOT_BE_MADE = {
    "virtio-crypto": "its vmsd is unmigratable: migrate says 'non-migratable device'",
    "vhost-user-blk": "needs a vhost-user backend process",
    "virtio-vhost_scsi": "needs the host's /dev/vhost-scsi",
    "virtio-vhost_vsock": "needs the host's /dev/vhost-vsock (absent here)",
}

@cache
def qemu_virtio_vmsds() -> frozenset[str]:
    """The vmsd names QEMU 7.2 gives a ``virtio`` field (hw/virtio/virtio.c, VMSTATE_VIRTIO_DEVICE)."""
    dump = json.loads(DUMP.read_text())
    return frozenset(
        entry["Description"]["name"]
        for entry in dump.values()
        if isinstance(entry, dict)
        and any(f.get("field") == "virtio" for f in entry.get("Description", {}).get("Fields", []))
    )


def test_every_virtio_section_is_typed_with_nothing_raw_or_opaque(stream_path: Path) -> None:
    with open_stream(stream_path) as source, open_stream(stream_path) as original:
        report = check_stream(source, original, descriptions=DEFAULT_REGISTRY)
    assert report.identical
    virtio = [s for s in report.sections if s.idstr and s.idstr.rsplit("/", 1)[-1] in qemu_virtio_vmsds()]
    if stream_path.name in WITHOUT_VIRTIO:
        assert virtio == [], f"{stream_path.name} was made without virtio devices"
        return
    assert virtio, f"{stream_path.name} has no virtio section"
    for section in virtio:
        assert (section.source, section.raw_bytes, section.opaque_bytes, section.unnamed) == ("typed", 0, 0, None), (
            section.idstr
        )
        assert section.named_bytes > 0


def test_the_corpus_holds_every_virtio_device_qemu_can_migrate_here() -> None:
    # the goldens list every fixture's sections (vmstate compat record wrote them from the streams)
    seen = {
        section["idstr"].rsplit("/", 1)[-1]
        for golden in (ROOT / "compat_fixtures" / "expected").glob("*.json")
        for section in json.loads(golden.read_text())["sections"]
    }
    virtio = qemu_virtio_vmsds()
    assert virtio - seen == set(CANNOT_BE_MADE)
    assert virtio & seen == set(DEVICE_CLASSES)
