"""virtio-blk's in-flight requests: QEMU's 1-marked list of VirtQueueElements, 0-terminated."""

from __future__ import annotations

import copy
import struct

import pytest

from devices import DEFAULT_REGISTRY
from devices.virtio.blk import VirtIOBlockRequest
from devices.virtio.element import ELEMENT_SIZE, IoVec, VirtQueueElement
from streams.files import open_stream
from streams.qemu import DeviceState, StreamReader
from vmstate.description import Record
from vmstate.engine import decode, encode
from vmstate.errors import MalformedError, TruncatedError
from vmstate.typed import to_record
from vmstate.wire import ByteReader


def _blk(corpus_file) -> DeviceState:  # type: ignore[no-untyped-def]
    with open_stream(corpus_file("pc-7.2-virtio-blk-legacy.mig")) as source:
        return next(r for r in StreamReader(source, descriptions=DEFAULT_REGISTRY) if isinstance(r, DeviceState) and r.idstr.endswith("virtio-blk"))


def _request(index: int, queue: int | None = None) -> Record:
    element = VirtQueueElement(index=index, out_num=1, in_num=2)
    element.out_addr[0] = 0x1000 * index
    element.in_addr[:2] = [0x2000, 0x3000]
    element.out_sg[0] = IoVec(iov_base=0, iov_len=16)
    element.in_sg[:2] = [IoVec(iov_base=0, iov_len=512), IoVec(iov_base=0, iov_len=1)]
    request = VIRTIO_REQUEST(element)
    if queue is not None:
        request.fields["queue_index"] = queue
    return request


def VIRTIO_REQUEST(element: VirtQueueElement) -> Record:  # noqa: N802
    return to_record(VirtIOBlockRequest(element=element))



@pytest.mark.parametrize("queues", [1, 4])
def test_in_flight_requests_round_trip(corpus_file, queues: int) -> None:  # type: ignore[no-untyped-def]
    state = _blk(corpus_file)
    record = copy.deepcopy(state.record)
    virtio = record.fields["virtio"]
    assert virtio.fields["device"].fields["requests"] == []  # an idle device writes just 00
    if queues > 1:  # a multiqueue device: each request names its queue
        one = virtio.fields["vq"][0]
        virtio.fields["vq"] = [copy.deepcopy(one) for _ in range(queues)]
        virtio.fields["num_queues"] = queues
    requests = [_request(7, 2 if queues > 1 else None), _request(9, 3 if queues > 1 else None)]
    virtio.fields["device"].fields["requests"] = requests
    data = encode(state.description, record)
    assert len(data) == state.size + 2 * (1 + ELEMENT_SIZE + (4 if queues > 1 else 0)) + (queues - 1) * 16
    back = decode(state.description, ByteReader(data), state.version)
    got = back.fields["virtio"].fields["device"].fields["requests"]
    assert [r.fields["element"].fields["index"] for r in got] == [7, 9]
    assert got[0].fields["element"].fields["in_sg"][0].fields["iov_len"] == 512
    assert ("queue_index" in got[0].fields) == (queues > 1)
    # host order: the element's index is little-endian on x86_64/aarch64 hosts
    start = data.index(b"\x01" + (b"\x00\x00\x00\x02" if queues > 1 else b"") + struct.pack("<III", 7, 1, 2))
    assert start > 0


def test_a_request_list_without_end_is_truncated(corpus_file) -> None:  # type: ignore[no-untyped-def]
    state = _blk(corpus_file)
    record = copy.deepcopy(state.record)
    record.fields["virtio"].fields["device"].fields["requests"] = [_request(1)]
    data = encode(state.description, record)
    cut = data.index(b"\x01" + struct.pack("<III", 1, 1, 2)) + 100
    with pytest.raises(TruncatedError) as caught:
        decode(state.description, ByteReader(data[:cut]), state.version)
    assert caught.value.path[:4] == ("virtio", "device", "requests", 0)


def test_request_count_is_bounded_by_the_ring_slots(corpus_file) -> None:  # type: ignore[no-untyped-def]
    state = _blk(corpus_file)
    record = copy.deepcopy(state.record)
    virtio = record.fields["virtio"]
    virtio.fields["vq"][0].fields["num"] = 1  # one slot: one request can be in flight
    virtio.fields["device"].fields["requests"] = [_request(1)]
    decode(state.description, ByteReader(encode(state.description, record)), state.version)
    virtio.fields["device"].fields["requests"] = [_request(1), _request(2)]
    with pytest.raises(MalformedError, match="ring slots") as caught:
        decode(state.description, ByteReader(encode(state.description, record)), state.version)
    assert caught.value.path == ("virtio", "device", "requests")
