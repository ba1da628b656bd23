#!/usr/bin/env python3
"""Engine overhead: our description-driven decode/encode against hand-written ``struct`` code.

Two layouts, each decoded and encoded both ways in the same run:

- **virtio-net state**: QEMU 7.2's ``virtio-net-device`` vmsd at version 11
  (``devices.virtio.net.VirtIONet``: version gates, ``exists`` tests, a
  variable-length MAC table, a subsection that is absent), with four MACs in
  the table and a few VLANs set; the baseline is the same layout written out
  by hand with precompiled structs;
- **array of structs**: 4,096 virtqueue-like elements (u32, u64, u16, u16),
  the shape of QEMU's ``VMSTATE_STRUCT_ARRAY``; the baseline is
  ``iter_unpack`` into dicts and one ``pack`` per element.

Reports microseconds per operation and the ratio to the baseline (target:
within 2x).  Both sides are checked to produce the same values and bytes.

    python3 benchmarks/engine.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import struct
import sys
import timeit
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devices.virtio.net import VirtIONet  # noqa: E402
from vmstate.description import Array, Description, Field, Int, Record, Struct  # noqa: E402
from vmstate.engine import decode, encode  # noqa: E402
from vmstate.typed import description_of, to_record  # noqa: E402
from vmstate.wire import ByteReader  # noqa: E402

# ---------------------------------------------------------------- virtio-net, by hand

_NET_HEAD = struct.Struct(">6sIIHBBI")
_NET_TAIL = struct.Struct(">512sIBBBBBBB")
_NET_HEAD_NAMES = ("mac", "tx_waiting", "mergeable_rx_bufs", "status", "promisc", "allmulti", "mac_table_in_use")
_NET_TAIL_NAMES = ("vlans", "has_vnet_hdr", "mac_table_multi_overflow", "mac_table_uni_overflow",
                   "alluni", "nomulti", "nouni", "nobcast", "has_ufo")


def net_decode_by_hand(data: bytes) -> dict[str, Any]:
    fields = dict(zip(_NET_HEAD_NAMES, _NET_HEAD.unpack_from(data, 0)))
    at = _NET_HEAD.size
    macs = fields["mac_table_in_use"] * 6
    fields["mac_table_macs"] = data[at : at + macs]
    at += macs
    fields.update(zip(_NET_TAIL_NAMES, _NET_TAIL.unpack_from(data, at)))
    at += _NET_TAIL.size
    if at != len(data):
        raise ValueError("trailing bytes")
    return fields


def net_encode_by_hand(fields: dict[str, Any]) -> bytes:
    return (_NET_HEAD.pack(*(fields[n] for n in _NET_HEAD_NAMES)) + fields["mac_table_macs"]
            + _NET_TAIL.pack(*(fields[n] for n in _NET_TAIL_NAMES)))


def net_state() -> VirtIONet:
    vlans = bytearray(512)
    for vid in (1, 10, 100, 4000):
        vlans[vid >> 3] |= 1 << (vid & 7)
    return VirtIONet(
        mac=bytes.fromhex("525400abcdef"), tx_waiting=0, mergeable_rx_bufs=1, status=1, promisc=0, allmulti=1,
        mac_table_in_use=4, mac_table_macs=bytes(range(24)), vlans=bytes(vlans), has_vnet_hdr=1, nobcast=0,
    )


# ---------------------------------------------------------------- array of structs

ELEMENTS = 4096
_QUEUE = struct.Struct(">IQHH")
_QUEUE_NAMES = ("num", "desc", "last_avail_idx", "vector")
QUEUE = Description(name="queue", version=1, fields=tuple(
    Field(name=name, kind=Int(width=width)) for name, width in zip(_QUEUE_NAMES, (4, 8, 2, 2))
))
QUEUES = Description(name="queues", version=1, fields=(
    Field(name="vq", kind=Array(element=Struct(description=QUEUE), count=ELEMENTS)),
))


def queues_decode_by_hand(data: bytes) -> list[dict[str, int]]:
    return [dict(zip(_QUEUE_NAMES, values)) for values in _QUEUE.iter_unpack(data)]


def queues_encode_by_hand(queues: list[dict[str, int]]) -> bytes:
    pack = _QUEUE.pack
    return b"".join([pack(q["num"], q["desc"], q["last_avail_idx"], q["vector"]) for q in queues])


def queues_record() -> Record:
    return Record(version=1, fields={"vq": [
        Record(version=1, fields={"num": 256, "desc": 0x1000 * i, "last_avail_idx": i & 0xFFFF, "vector": i % 3})
        for i in range(ELEMENTS)
    ]})


# ---------------------------------------------------------------- timing


def best_us(function: Callable[[], Any], repeat: int) -> float:
    timer = timeit.Timer(function)
    number, _ = timer.autorange()
    return min(timer.repeat(repeat=repeat, number=number)) / number * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    net = description_of(VirtIONet)
    net_record = to_record(net_state())
    net_bytes = encode(net, net_record)
    assert net_encode_by_hand(net_decode_by_hand(net_bytes)) == net_bytes
    assert decode(net, ByteReader(net_bytes), 11).fields == net_decode_by_hand(net_bytes)

    q_record = queues_record()
    q_bytes = encode(QUEUES, q_record)
    by_hand = queues_decode_by_hand(q_bytes)
    assert [r.fields for r in decode(QUEUES, ByteReader(q_bytes), 1).fields["vq"]] == by_hand
    assert queues_encode_by_hand(by_hand) == q_bytes

    cases = [
        ("virtio-net state, decode", lambda: decode(net, ByteReader(net_bytes), 11), lambda: net_decode_by_hand(net_bytes)),
        ("virtio-net state, encode", lambda: encode(net, net_record), lambda: net_encode_by_hand(net_decode_by_hand(net_bytes))),
        (f"{ELEMENTS} structs, decode", lambda: decode(QUEUES, ByteReader(q_bytes), 1), lambda: queues_decode_by_hand(q_bytes)),
        (f"{ELEMENTS} structs, encode", lambda: encode(QUEUES, q_record), lambda: queues_encode_by_hand(by_hand)),
    ]
    print(f"{'case':<28} {'ours (us)':>10} {'by hand (us)':>13} {'ratio':>7}  target <= 2x")
    met = True
    for name, ours, hand in cases:
        ours_us, hand_us = best_us(ours, args.repeat), best_us(hand, args.repeat)
        ratio = ours_us / hand_us
        met &= ratio <= 2
        print(f"{name:<28} {ours_us:>10.1f} {hand_us:>13.1f} {ratio:>6.2f}x  {'met' if ratio <= 2 else 'NOT met'}")
    print(f"({len(net_bytes)} bytes of virtio-net state, {len(q_bytes)} bytes of structs)")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
