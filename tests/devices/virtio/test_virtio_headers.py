"""Device headers in device byte order (and the two structures that are always LE)."""

from __future__ import annotations

import struct
from typing import Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.cpu import AARCH64, PPC64, X86_64, Endian
from devices.virtio.access import EndianState, GuestMemory, tswap32
from devices.virtio.headers import (
    P9_RVERSION,
    P9_TVERSION,
    VIRTIO_BALLOON_S_MEMFREE,
    VIRTIO_BALLOON_S_SWAP_IN,
    VIRTIO_BLK_T_OUT,
    VIRTIO_CONSOLE_PORT_OPEN,
    VIRTIO_NET_HDR_F_NEEDS_CSUM,
    VIRTIO_NET_HDR_GSO_TCPV6,
    VIRTIO_SCSI_T_EVENTS_MISSED,
    VIRTIO_SCSI_T_TRANSPORT_RESET,
    BalloonConfig,
    BalloonStat,
    BlkConfig,
    BlkOutHdr,
    NetCtrlHdr,
    NetGuestOffloads,
    NetHdr,
    NetHdrMrgRxbuf,
    NetMacTable,
    NetMqPairs,
    NetVlan,
    P9Config,
    P9Header,
    ScsiCmdReq,
    ScsiCmdResp,
    ScsiEvent,
    SerialConfig,
    SerialControl,
    pack_pfns,
    pack_stats,
    pfn_to_address,
    scsi_lun,
    swap_net_hdr,
    unpack_pfns,
    unpack_stats,
)
from devices.virtio.vring import Vring, add_buffer, pop
from vmstate.errors import EncodeError, MalformedError, TruncatedError, VMStateError

SUBJECTS = {
    "ppc64-be": (EndianState.legacy(PPC64, Endian.BIG), True),
    "ppc64-le": (EndianState.legacy(PPC64, Endian.LITTLE), False),
    "aarch64-be": (EndianState.legacy(AARCH64, Endian.BIG), True),
    "x86": (EndianState.legacy(X86_64), False),
    "ppc64-modern": (EndianState.modern(PPC64), False),
}
subjects = pytest.mark.parametrize("subject, big", list(SUBJECTS.values()), ids=list(SUBJECTS))
subject_st = st.sampled_from(list(SUBJECTS.values()))
BE = SUBJECTS["ppc64-be"][0]
LE = SUBJECTS["ppc64-le"][0]


def u(bits: int) -> st.SearchStrategy[int]:
    return st.integers(0, (1 << bits) - 1)


def order(big: bool) -> Literal["big", "little"]:
    return "big" if big else "little"


# -- explicit byte vectors, one per header and byte order ------------------------------------------

NET_HDR = NetHdr(flags=VIRTIO_NET_HDR_F_NEEDS_CSUM, gso_type=VIRTIO_NET_HDR_GSO_TCPV6, hdr_len=0x36,
                 gso_size=1448, csum_start=0x22, csum_offset=0x10)
VECTORS = [
    # (value, big-endian bytes, little-endian bytes)
    (NET_HDR, "01 04 0036 05a8 0022 0010", "01 04 3600 a805 2200 1000"),
    (NetHdrMrgRxbuf(hdr=NET_HDR, num_buffers=3), "01 04 0036 05a8 0022 0010 0003", "01 04 3600 a805 2200 1000 0300"),
    (NetMacTable(macs=(bytes.fromhex("525400123456"), bytes.fromhex("01005e000001"))),
     "00000002 525400123456 01005e000001", "02000000 525400123456 01005e000001"),
    (NetVlan(vid=0x123), "0123", "2301"),
    (NetMqPairs(virtqueue_pairs=4), "0004", "0400"),
    (NetGuestOffloads(offloads=0x0102), "0000000000000102", "0201000000000000"),
    (BlkOutHdr(type=VIRTIO_BLK_T_OUT, ioprio=2, sector=0x123456789),
     "00000001 00000002 0000000123456789", "01000000 02000000 8967452301000000"),
    (ScsiCmdReq(lun=scsi_lun(1, 2), tag=0x1122, task_attr=0, prio=1, crn=2),
     "01014002 00000000 0000000000001122 00 01 02", "01014002 00000000 2211000000000000 00 01 02"),
    (ScsiCmdResp(sense_len=18, resid=512, status_qualifier=0x0102, status=2, response=0),
     "00000012 00000200 0102 02 00", "12000000 00020000 0201 02 00"),
    (ScsiEvent(event=VIRTIO_SCSI_T_EVENTS_MISSED | VIRTIO_SCSI_T_TRANSPORT_RESET, lun=scsi_lun(0, 0), reason=1),
     "80000001 0100400000000000 00000001", "01000080 0100400000000000 01000000"),
    (SerialControl(id=1, event=VIRTIO_CONSOLE_PORT_OPEN, value=1), "00000001 0006 0001", "01000000 0600 0100"),
    (SerialConfig(cols=80, rows=25, max_nr_ports=31, emerg_wr=0x41),
     "0050 0019 0000001f 00000041", "5000 1900 1f000000 41000000"),
    (BalloonStat(tag=VIRTIO_BALLOON_S_MEMFREE, val=0x10000), "0004 0000000000010000", "0400 0000010000000000"),
    (P9Config(tag=b"hostshare"), "0009" + b"hostshare".hex(), "0900" + b"hostshare".hex()),
]
vectors = pytest.mark.parametrize("value, be, le", VECTORS, ids=[type(v[0]).__name__ for v in VECTORS])


@vectors
@subjects
def test_byte_vectors(subject, big, value, be, le) -> None:
    expected = bytes.fromhex(be if big else le)
    assert value.pack(subject) == expected
    assert type(value).unpack(subject, expected) == value
    # a header followed by payload, found at an offset
    assert type(value).unpack(subject, b"\xee" * 3 + expected + b"payload", 3) == value


@vectors
def test_the_two_orders_really_differ(value, be, le) -> None:
    assert value.pack(BE) != value.pack(LE)
    try:
        misread = type(value).unpack(LE, value.pack(BE))
    except TruncatedError:  # a swapped count or length claims more than is there
        return
    assert misread != value


@vectors
@pytest.mark.parametrize("subject", [BE, LE], ids=["be", "le"])
def test_truncation_at_every_offset(subject, value, be, le) -> None:
    raw = value.pack(subject)
    for cut in range(len(raw)):
        with pytest.raises(TruncatedError):
            type(value).unpack(subject, raw[:cut])


# -- hypothesis round trips and byte order ---------------------------------------------------------

lun_st = st.builds(scsi_lun, u(8), u(14))
HEADERS = {
    "net": st.builds(NetHdr, flags=u(8), gso_type=u(8), hdr_len=u(16), gso_size=u(16), csum_start=u(16), csum_offset=u(16)),
    "net-mrg": st.builds(NetHdrMrgRxbuf, hdr=st.builds(NetHdr, hdr_len=u(16), csum_offset=u(16)), num_buffers=u(16)),
    "mac-table": st.builds(NetMacTable, macs=st.lists(st.binary(min_size=6, max_size=6), max_size=8)),
    "vlan": st.builds(NetVlan, vid=u(16)),
    "mq": st.builds(NetMqPairs, virtqueue_pairs=u(16)),
    "offloads": st.builds(NetGuestOffloads, offloads=u(64)),
    "blk": st.builds(BlkOutHdr, type=u(32), ioprio=u(32), sector=u(64)),
    "blk-config": st.builds(BlkConfig, capacity=u(64), size_max=u(32), seg_max=u(32), cylinders=u(16), heads=u(8),
                            sectors=u(8), blk_size=u(32), physical_block_exp=u(8), alignment_offset=u(8),
                            min_io_size=u(16), opt_io_size=u(32), wce=u(8)),
    "scsi-req": st.builds(ScsiCmdReq, lun=lun_st, tag=u(64), task_attr=u(8), prio=u(8), crn=u(8)),
    "scsi-resp": st.builds(ScsiCmdResp, sense_len=u(32), resid=u(32), status_qualifier=u(16), status=u(8), response=u(8)),
    "scsi-event": st.builds(ScsiEvent, event=u(32), lun=lun_st, reason=u(32)),
    "serial-control": st.builds(SerialControl, id=u(32), event=u(16), value=u(16)),
    "serial-config": st.builds(SerialConfig, cols=u(16), rows=u(16), max_nr_ports=u(32), emerg_wr=u(32)),
    "balloon-stat": st.builds(BalloonStat, tag=u(16), val=u(64)),
    "9p-config": st.builds(P9Config, tag=st.binary(max_size=64)),
}


@given(subject_st, st.one_of(*HEADERS.values()))
def test_pack_unpack_round_trip(case, header) -> None:
    subject, _ = case
    raw = header.pack(subject)
    assert type(header).unpack(subject, raw) == header
    assert type(header).unpack(subject, raw + b"\x00" * 5) == header


@given(subject_st, st.builds(BlkOutHdr, type=u(32), ioprio=u(32), sector=u(64)))
def test_blk_fields_land_in_device_order(case, hdr) -> None:
    subject, big = case
    raw = hdr.pack(subject)
    assert raw[0:4] == hdr.type.to_bytes(4, order(big))
    assert raw[4:8] == hdr.ioprio.to_bytes(4, order(big))
    assert raw[8:16] == hdr.sector.to_bytes(8, order(big))


@given(subject_st, u(16), u(16))
def test_num_buffers_is_the_last_u16_in_device_order(case, hdr_len, num_buffers) -> None:
    subject, big = case
    raw = NetHdrMrgRxbuf(hdr=NetHdr(hdr_len=hdr_len), num_buffers=num_buffers).pack(subject)
    assert len(raw) == NetHdrMrgRxbuf.SIZE == 12
    assert raw[10:12] == num_buffers.to_bytes(2, order(big))
    assert raw[2:4] == hdr_len.to_bytes(2, order(big))


@given(subject_st, u(64), u(32))
def test_blk_config_offsets(case, capacity, blk_size) -> None:
    subject, big = case
    raw = BlkConfig(capacity=capacity, blk_size=blk_size).pack(subject)
    assert len(raw) == BlkConfig.SIZE == 33
    assert raw[0:8] == capacity.to_bytes(8, order(big))
    assert raw[20:24] == blk_size.to_bytes(4, order(big))


@given(st.binary(max_size=40), subject_st)
def test_random_bytes_raise_only_our_errors(data, case) -> None:
    subject, _ = case
    for cls in (NetHdr, NetHdrMrgRxbuf, NetMacTable, BlkOutHdr, ScsiCmdReq, ScsiEvent, SerialControl, P9Config):
        try:
            cls.unpack(subject, data)  # type: ignore[attr-defined]
        except VMStateError:
            pass
    for fixed in (P9Header, BalloonConfig, NetCtrlHdr):
        try:
            fixed.unpack(data)  # type: ignore[attr-defined]
        except VMStateError:
            pass
    unpack_pfns(subject, data)
    unpack_stats(subject, data)


def test_values_that_do_not_fit_are_refused() -> None:
    with pytest.raises(EncodeError):
        NetHdr(hdr_len=1 << 16)
    with pytest.raises(EncodeError):
        BlkOutHdr(type=-1)
    with pytest.raises(EncodeError):
        ScsiCmdReq(lun=b"\x01")
    with pytest.raises(EncodeError):
        NetMacTable(macs=[b"\x00" * 5])
    with pytest.raises(EncodeError):
        scsi_lun(0, 0x4000)


# -- virtio-net -----------------------------------------------------------------------------------

@pytest.mark.parametrize("host_big", [False, True], ids=["le-host", "be-host"])
@subjects
def test_swap_net_hdr_for_a_tap_backend(subject, big, host_big) -> None:
    device_bytes = NET_HDR.pack(subject) + b"packet"
    host_bytes = swap_net_hdr(subject, device_bytes, host_big_endian=host_big)
    # the backend sees the header in host order, the payload untouched
    host_codec = struct.Struct((">" if host_big else "<") + "BBHHHH")
    assert host_bytes[:10] == host_codec.pack(1, 4, 0x36, 1448, 0x22, 0x10)
    assert host_bytes[10:] == b"packet"
    assert (host_bytes == device_bytes) is (big == host_big)
    # the same call converts back (the rx direction)
    assert swap_net_hdr(subject, host_bytes, host_big_endian=host_big) == device_bytes


@given(subject_st, st.booleans(), st.binary(min_size=10, max_size=16))
def test_swap_net_hdr_is_an_involution(case, host_big, raw) -> None:
    subject, _ = case
    once = swap_net_hdr(subject, raw, host_big_endian=host_big)
    assert swap_net_hdr(subject, once, host_big_endian=host_big) == raw
    assert once[:2] == raw[:2] and once[10:] == raw[10:]


def test_swap_net_hdr_needs_a_whole_header() -> None:
    with pytest.raises(TruncatedError):
        swap_net_hdr(BE, bytes(9))


def test_mac_table_set_carries_two_tables_back_to_back() -> None:
    unicast = NetMacTable(macs=[bytes.fromhex("525400000001")])
    multicast = NetMacTable(macs=[bytes.fromhex("01005e000001"), bytes.fromhex("333300000001")])
    for subject in (BE, LE):
        raw = unicast.pack(subject) + multicast.pack(subject)
        first = NetMacTable.unpack(subject, raw)
        assert first == unicast
        assert NetMacTable.unpack(subject, raw, first.size) == multicast


def test_mac_table_count_is_checked_before_slicing() -> None:
    raw = NetMacTable(macs=[bytes(6)] * 3).pack(BE)
    with pytest.raises(TruncatedError, match="3 entries"):
        NetMacTable.unpack(BE, raw[:-1])
    with pytest.raises(TruncatedError):
        NetMacTable.unpack(BE, b"\xff\xff\xff\xff" + bytes(12))  # 4 billion entries claimed
    # read with the wrong order, a 3-entry table claims 0x03000000 entries
    with pytest.raises(TruncatedError):
        NetMacTable.unpack(LE, raw)


def test_ctrl_header_has_no_byte_order() -> None:
    assert NetCtrlHdr(class_=1, cmd=0).pack() == b"\x01\x00"
    assert NetCtrlHdr.unpack(b"\x04\x00rest") == NetCtrlHdr(class_=4, cmd=0)
    with pytest.raises(TruncatedError):
        NetCtrlHdr.unpack(b"\x04")


@subjects
def test_net_header_read_from_a_guest_ring(subject, big) -> None:
    """End to end: the guest queues a tx packet; the device pops it and decodes the header."""
    memory = GuestMemory(1 << 20)
    ring = Vring.legacy(0x10000, 64)
    memory.write(0x4000, NET_HDR.pack(subject) + b"frame")
    add_buffer(subject, memory, ring, [(0x4000, 15)])
    element = pop(subject, memory, ring, 0)
    assert element is not None
    segment = element.out_sg[0]
    assert NetHdr.unpack(subject, memory.read(segment.addr, segment.len)) == NET_HDR


# -- virtio-scsi ---------------------------------------------------------------------------------------

def test_scsi_lun_bytes_never_swap() -> None:
    req = ScsiCmdReq(lun=scsi_lun(3, 0x1234), tag=7)
    assert req.pack(BE)[:8] == req.pack(LE)[:8] == bytes.fromhex("0103523400000000")
    assert (req.target, req.lun_id) == (3, 0x1234)


# -- virtio-serial ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "subject, host_big, wire",
    [
        (SUBJECTS["x86"][0], False, "0000001f"),
        (BE, False, "1f000000"),  # the verified ppc64-on-x86 stream
        (BE, True, "0000001f"),  # a ppc64 host has nothing to swap
        (LE, True, "1f000000"),
    ],
)
def test_serial_max_nr_ports_in_the_migration_stream(subject, host_big, wire) -> None:
    """docs §4: the config holds tswap32(31); the stream writes that host value with a be32 put."""
    stored = tswap32(subject, 31, host_big_endian=host_big)
    assert stored.to_bytes(4, "big") == bytes.fromhex(wire)


# -- virtio-balloon ------------------------------------------------------------------------------------

@subjects
def test_balloon_pfns(subject, big) -> None:
    raw = pack_pfns(subject, [0x12345, 1])
    assert raw == (0x12345).to_bytes(4, order(big)) + (1).to_bytes(4, order(big))
    assert unpack_pfns(subject, raw) == (0x12345, 1)
    assert unpack_pfns(subject, raw + b"\x01\x02\x03") == (0x12345, 1)  # trailing partial ignored
    assert pfn_to_address(0x12345) == 0x12345000


@given(subject_st, st.lists(u(32), max_size=64))
def test_balloon_pfns_round_trip(case, pfns) -> None:
    subject, big = case
    raw = pack_pfns(subject, pfns)
    assert unpack_pfns(subject, raw) == tuple(pfns)
    assert raw[:4] == (pfns[0].to_bytes(4, order(big)) if pfns else b"")


def test_balloon_pfn_out_of_range() -> None:
    with pytest.raises(EncodeError):
        pack_pfns(BE, [1 << 32])


@given(subject_st, st.lists(st.builds(BalloonStat, tag=u(16), val=u(64)), max_size=10), st.binary(max_size=9))
def test_balloon_stats_round_trip(case, stats, tail) -> None:
    subject, big = case
    raw = pack_stats(subject, stats)
    assert len(raw) == 10 * len(stats)  # packed: no padding between tag and val
    assert unpack_stats(subject, raw + tail) == tuple(stats)
    if stats:
        assert raw[2:10] == stats[0].val.to_bytes(8, order(big))


def test_balloon_stats_keep_unknown_tags() -> None:
    stats = [BalloonStat(tag=VIRTIO_BALLOON_S_SWAP_IN, val=5), BalloonStat(tag=99, val=6)]
    assert unpack_stats(BE, pack_stats(BE, stats)) == tuple(stats)


def test_balloon_config_is_little_endian_even_for_a_be_legacy_device() -> None:
    config = BalloonConfig(num_pages=0x100, actual=0x20)
    assert config.pack() == bytes.fromhex("00010000 20000000")
    assert BalloonConfig.unpack(bytes.fromhex("00010000 20000000")) == config
    # what the device-order accessors would have produced on a BE device: not this
    assert pack_pfns(BE, [0x100, 0x20]) != config.pack()
    with pytest.raises(TruncatedError):
        BalloonConfig.unpack(bytes(7))


# -- virtio-9p -------------------------------------------------------------------------------------------

def test_9p_config_tag_length_is_bounded_by_the_buffer() -> None:
    with pytest.raises(TruncatedError):
        P9Config.unpack(BE, b"\xff\xff" + b"tag")
    assert P9Config.unpack(LE, b"\x03\x00tagXX") == P9Config(tag=b"tag")
    assert P9Config(tag=b"tag").size == 5


@pytest.mark.parametrize("subject", [BE, LE], ids=["be-device", "le-device"])
def test_9p_messages_are_always_little_endian(subject) -> None:
    # Tversion of 19 bytes with NOTAG, whatever the device order (no subject is even taken)
    header = P9Header(size=19, type=P9_TVERSION, tag=0xFFFF)
    assert header.pack() == bytes.fromhex("13000000 64 ffff")
    assert len(header.pack()) == P9Header.SIZE == 7
    assert P9Header.unpack(bytes.fromhex("0b000000 65 0100") + b"body") == P9Header(size=11, type=P9_RVERSION, tag=1)
    # the config next to it does follow the device
    assert P9Config(tag=b"x").pack(subject)[:2] == (1).to_bytes(2, "big" if subject is BE else "little")


@given(u(32), u(8), u(16))
def test_9p_header_round_trip(size, type_, tag) -> None:
    raw = struct.pack("<IBH", size, type_, tag)
    if size < 7:
        with pytest.raises(MalformedError):
            P9Header.unpack(raw)
    else:
        header = P9Header.unpack(raw)
        assert (header.size, header.type, header.tag) == (size, type_, tag)
        assert header.pack() == raw


@pytest.mark.parametrize(
    "cls, size",
    [(NetHdr, 10), (NetHdrMrgRxbuf, 12), (BlkOutHdr, 16), (BlkConfig, 33), (ScsiCmdReq, 19), (ScsiCmdResp, 12),
     (ScsiEvent, 16), (SerialControl, 8), (SerialConfig, 12), (BalloonStat, 10), (BalloonConfig, 8), (P9Header, 7)],
)
def test_sizes_match_the_c_layouts(cls, size) -> None:
    assert cls.SIZE == size


def test_short_buffers_name_offset_and_structure_in_fields() -> None:
    with pytest.raises(TruncatedError) as short:
        NetCtrlHdr.unpack(b"\x00\x00\x04", 2)
    assert (short.value.offset, short.value.path, short.value.message) == (2, ("NetCtrlHdr",), "expected 2 bytes, got 1")
    raw = NetMacTable(macs=[bytes(6)] * 3).pack(BE)
    with pytest.raises(TruncatedError) as table:
        NetMacTable.unpack(BE, raw[:-1])
    assert (table.value.offset, table.value.path) == (4, ("NetMacTable", "macs"))
    with pytest.raises(MalformedError) as p9:
        P9Header.unpack(b"\x00" + bytes(7), 1)
    assert (p9.value.offset, p9.value.path) == (1, ("P9Header", "size"))
    with pytest.raises(EncodeError) as wide:
        NetCtrlHdr(class_=256, cmd=0)
    assert wide.value.path == ("class_",) and "class_" not in wide.value.message
