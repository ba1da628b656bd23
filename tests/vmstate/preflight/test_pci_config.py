"""The PCI config masks pre-flight and ``vmstate edit`` apply, held against what real QEMU 7.2 and 10.0 refused.

``compat_fixtures/pci_config_masks.json`` (made by ``compat_fixtures/pci_config_masks.py``) keeps, per device,
its own config bytes and every byte QEMU refused when all bytes from there on were inverted, with QEMU's masks.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support.paths import ROOT
from vmstate.preflight.pci_config import ByteMask, config_masks, first_refused_byte

MEASURED: dict[str, Any] = json.loads((ROOT / "compat_fixtures" / "pci_config_masks.json").read_text())


def test_the_measurements_cover_both_versions_both_buses_and_both_layouts() -> None:
    assert {m["qemu"] for m in MEASURED.values()} == {"7.2", "10.0"}
    assert {len(m["config"]) // 2 for m in MEASURED.values()} == {256, 4096}
    assert all(m["refused"] and m["last_status"] == "completed" for m in MEASURED.values())


@pytest.mark.parametrize("name", sorted(MEASURED))
def test_every_byte_qemu_refused_is_refused_here_with_its_masks(name: str) -> None:
    measured = MEASURED[name]
    own = bytes.fromhex(measured["config"])
    masks = config_masks(own)
    assert masks.unknown == ()
    for at, cmask, wmask, w1cmask in measured["refused"]:
        assert masks.masks.get(at) == ByteMask(cmask, wmask, w1cmask), hex(at)


@pytest.mark.parametrize("name", sorted(MEASURED))
def test_the_bytes_qemu_let_change_are_not_refused_here(name: str) -> None:
    """Between two refused bytes (and from where the inverted rest loaded), QEMU compared nothing."""
    measured = MEASURED[name]
    own = bytes.fromhex(measured["config"])
    masks = config_masks(own)
    refused = {at for at, *_ in measured["refused"]}
    for at in range(0x40, len(own)):
        if at not in refused:
            mask = masks.masks.get(at)
            assert mask is None or mask.compared == 0, hex(at)


@pytest.mark.parametrize("name", sorted(MEASURED))
def test_the_first_refused_byte_is_the_one_qemu_named(name: str) -> None:
    """Invert everything from each refused byte on: the first refusal is that byte, as QEMU said."""
    measured = MEASURED[name]
    own = bytes.fromhex(measured["config"])
    masks = config_masks(own)
    for at, cmask, wmask, w1cmask in measured["refused"]:
        incoming = own[:at] + bytes(b ^ 0xFF for b in own[at:])
        assert first_refused_byte(incoming, own, masks) == (at, ByteMask(cmask, wmask, w1cmask))
    tail = measured["loads_from"]
    assert first_refused_byte(own[:tail] + bytes(b ^ 0xFF for b in own[tail:]), own, masks) is None


@given(st.binary(min_size=256, max_size=256))
def test_any_config_bytes_give_masks_or_name_what_is_unknown(own: bytes) -> None:
    """Hostile config bytes (looping or wild capability pointers) end the walk; nothing is masked past 0xff."""
    masks = config_masks(own)
    assert all(0 <= at < 0x100 for at in masks.masks)
    assert first_refused_byte(own, own, masks) is None


def test_a_capability_pointer_loop_is_reported_not_followed() -> None:
    own = bytearray(256)
    own[0x06], own[0x34] = 0x10, 0x40
    own[0x40:0x42] = bytes([0x11, 0x40])  # MSI-X pointing at itself
    masks = config_masks(bytes(own))
    assert masks.masks[0x43] == ByteMask(0xFF, 0xC0) and "capability list" in masks.unknown[0]


def test_an_unknown_capability_and_extended_capabilities_are_named() -> None:
    own = bytearray(4096)
    own[0x06], own[0x34] = 0x10, 0x40
    own[0x40:0x42] = bytes([0x05, 0x00])  # MSI: not measured here
    own[0x100:0x104] = bytes([0x0E, 0x00, 0x01, 0x00])  # ARI
    assert config_masks(bytes(own)).unknown == (
        "capability 0x05 at 0x40 (its write masks are not known here)",
        "PCI Express extended capabilities from 0x100 (their write masks are not known here)")


def test_a_profile_of_an_earlier_release_keeps_its_header_check_and_says_what_it_cannot(tmp_path: Any) -> None:
    """Profiles saved before the capability check kept 64 bytes under ``pci_header``: they still load."""
    from vmstate.preflight import Profile
    from vmstate.preflight.rules import pci_config_unchecked

    text = (ROOT / "compat_fixtures" / "preflight" / "profiles" / "7.2-pc-7.2-net-rng.json").read_text()
    entry = json.loads(text)
    for slot in entry["virtio"].values():
        slot["pci_header"] = slot.pop("pci_config")[:128]
    old = tmp_path / "old.json"
    old.write_text(json.dumps(entry))
    profile = Profile.load(old)
    idstr, slot = sorted(profile.virtio.items())[0]
    assert slot.pci_config is not None and len(slot.pci_config) == 128
    assert "the profile keeps only the first 64" in pci_config_unchecked(idstr, slot)[0]


def test_pre_flight_says_the_bars_are_not_checked() -> None:
    import io
    import lzma

    from vmstate.preflight import Profile, predict

    preflight = ROOT / "compat_fixtures" / "preflight"
    stream = lzma.decompress((preflight / "streams" / "pc-7.2-net-rng.mig.xz").read_bytes())
    verdict = predict(io.BytesIO(stream), Profile.load(preflight / "profiles" / "7.2-pc-7.2-net-rng.json"))
    assert verdict.loads and any("BARs' read-only bits" in line for line in verdict.unchecked)
