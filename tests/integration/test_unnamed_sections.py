"""Every virtio section typed, and a section that is not is a failure everywhere (issue 12, part 1).

The multiqueue fixture is real QEMU 7.2 (compat_fixtures/generate.py,
``q35-7.2-virtio-multiqueue``): virtio-net ``mq=on`` on a 4-queue tap
backend the paused guest never negotiated, so the stream carries three
queues and still ``max_queue_pairs = 4``.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import attrs
import pytest

from devices import DEFAULT_REGISTRY
from devices.virtio.net import VirtIONet
from streams.convert import convert
from streams.qemu import DeviceState, StreamReader, check_stream
from tests.support.cli import run_script
from tests.support.paths import CORPUS
from tests.support.streams import unnamed_virtio_net
from vmstate import save
from vmstate.description import Description
from vmstate.edit import edit_virtio_devices, edit_virtio_stream
from vmstate.errors import UnnamedSectionError

MULTIQUEUE = CORPUS / "q35-7.2-virtio-multiqueue.mig"


def _net(records: list[object]) -> DeviceState:
    return next(r for r in records if isinstance(r, DeviceState) and r.idstr.endswith("/virtio-net"))


def test_multiqueue_backend_is_decoded_typed() -> None:
    with MULTIQUEUE.open("rb") as source:
        net = _net(list(StreamReader(source, descriptions=DEFAULT_REGISTRY)))
    assert net.source == "typed" and net.fallback is None
    virtio = net.record.fields["virtio"]
    assert virtio.fields["num_queues"] == 3  # one pair and the control queue: MQ not negotiated
    device = virtio.fields["device"].fields
    assert (device["max_queue_pairs"], device["curr_queue_pairs"], device["tx_waiting_more"]) == (4, 1, [])


def test_every_virtio_section_of_the_multiqueue_stream_is_typed() -> None:
    with MULTIQUEUE.open("rb") as source, MULTIQUEUE.open("rb") as original:
        report = check_stream(source, original, descriptions=DEFAULT_REGISTRY)
    assert report.identical and report.raw_bytes == 0 and report.unnamed == []
    virtio = [s for s in report.sections if "virtio" in s.idstr]
    assert len(virtio) == 5 and all(s.source == "typed" and s.opaque_bytes == 0 for s in virtio)


def _without_alternatives(idstr: str, instance_id: int, version: int) -> Description | None:
    found = DEFAULT_REGISTRY(idstr, instance_id, version)
    return None if found is None else attrs.evolve(found, alternatives=())


def test_the_inferred_layout_alone_does_not_fit_and_check_says_so() -> None:
    # What HEAD a3b231a did: the queue count says one pair, the description ends early,
    # the vmdesc takes over with one opaque blob. Today that is reported as a failure.
    with MULTIQUEUE.open("rb") as source, MULTIQUEUE.open("rb") as original:
        report = check_stream(source, original, descriptions=_without_alternatives)
    assert report.identical
    [unnamed] = report.unnamed
    assert unnamed.idstr.endswith("/virtio-net") and unnamed.source == "vmdesc"
    assert unnamed.opaque_bytes > 40_000 and "no section boundary" in (unnamed.unnamed or "")


def test_saving_writes_the_multiqueue_fields_by_qemus_rule() -> None:
    # virtio_net: VMSTATE_UINT16_TEST(max_queue_pairs, ..., max_queue_pairs_gt_1)
    one = save(VirtIONet(max_queue_pairs=1, curr_queue_pairs=1))
    four = save(VirtIONet(max_queue_pairs=4, curr_queue_pairs=2, tx_waiting_more=[7]))
    assert len(four) - len(one) == 2 + 2 + 4
    assert four[len(one) : len(one) + 8] == bytes.fromhex("0004000200000007")


@pytest.mark.parametrize("codec", ["msgpack", "cbor", "json"])
def test_multiqueue_snapshot_round_trip(tmp_path: Path, codec: str) -> None:
    # the snapshot loads the state back through the engine: it must find the multiqueue layout too
    snapshot, back = tmp_path / f"mq.{codec}", tmp_path / "back.mig"
    convert(MULTIQUEUE, snapshot, codec, descriptions=DEFAULT_REGISTRY)
    convert(snapshot, back, "qemu", descriptions=DEFAULT_REGISTRY)
    assert back.read_bytes() == MULTIQUEUE.read_bytes()



def test_compat_record_refuses_a_fallback(tmp_path: Path) -> None:
    odd = unnamed_virtio_net(tmp_path)
    fixtures = tmp_path / "fixtures"
    result = run_script("vmstate", "compat", "record", fixtures, odd)
    assert result.returncode == 2
    assert "did not name 1 section" in result.stderr and "virtio-net" in result.stderr
    assert not list(fixtures.glob("streams/*")) and not list(fixtures.glob("expected/*"))
    ledger = fixtures / "schema" / "fixtures.lock.json"
    assert not ledger.exists() or json.loads(ledger.read_text()).get("fixtures", []) == []


def test_edit_api_refuses_an_unnamed_virtio_section_and_writes_nothing(tmp_path: Path) -> None:
    odd = unnamed_virtio_net(tmp_path)
    out = tmp_path / "edited.mig"
    with pytest.raises(UnnamedSectionError) as caught:
        edit_virtio_stream(odd, out, lambda idstr, device: None)
    assert caught.value.section == "0000:00:02.0/virtio-net" and "vmdesc" in str(caught.value)
    assert not out.exists() and list(tmp_path.iterdir()) == [odd]
    out.write_bytes(b"precious")
    with pytest.raises(UnnamedSectionError):
        edit_virtio_stream(odd, out, lambda idstr, device: None)
    assert out.read_bytes() == b"precious"
    with odd.open("rb") as source, pytest.raises(UnnamedSectionError):
        edit_virtio_devices(source, io.BytesIO(), lambda idstr, device: None)


def test_edit_of_the_multiqueue_stream_changes_one_field(tmp_path: Path) -> None:
    out = tmp_path / "edited.mig"

    def new_mac(idstr: str, device: object) -> None:
        if idstr.endswith("/virtio-net"):
            device.device.fields["mac"] = bytes.fromhex("525400abcdef")  # type: ignore[attr-defined]

    assert edit_virtio_stream(MULTIQUEUE, out, new_mac) == 5
    diff = run_script("migration-diff", MULTIQUEUE, out)
    assert diff.returncode == 1
    changes = [line for line in diff.stdout.splitlines() if not line.startswith(("---", "+++"))]
    assert changes == ["0000:00:01.0/virtio-net: virtio.device.mac: 525400123456 -> 525400abcdef"]
