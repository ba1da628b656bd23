"""The ppc64 vCPU as QEMU 10.0 sends it: cpu/slb version 2, POWER10's cpu/bhrb; 7.2's layout kept.

Real streams (compat_fixtures/generate.py): ``pseries-10.0-*`` (QEMU 10.0.2 on pseries-10.0, a
POWER10 by default), ``pseries-10.0-on-7.2-*`` (QEMU 10.0.2 on pseries-7.2, POWER9) and QEMU 7.2's own.
"""

from __future__ import annotations

import pytest

from devices import DEFAULT_REGISTRY
from streams.files import open_stream
from streams.qemu import DeviceState, StreamReader, encode_record
from tests.support.paths import CORPUS


def _cpu(name: str) -> DeviceState:
    with open_stream(CORPUS / name) as source:
        (cpu,) = [r for r in StreamReader(source, descriptions=DEFAULT_REGISTRY)
                  if isinstance(r, DeviceState) and r.idstr == "cpu"]
    assert cpu.source == "typed" and cpu.fallback is None
    return cpu


@pytest.mark.parametrize(("name", "description", "slb", "bhrb"), [
    ("pseries-10.0-virtio-all-legacy.mig.xz", "cpu@ppc64-9.1", 2, True),
    ("pseries-10.0-on-7.2-virtio-all-modern.mig.xz", "cpu@ppc64-9.1", 2, False),
    ("pseries-7.2-virtio-all-legacy.mig", "cpu@ppc64", 1, False),
    ("pseries-2.2-virtio-all.mig", "cpu@ppc64-pre-2.8", 1, False),
])
def test_each_sender_is_read_and_written_at_its_own_slb_version(name: str, description: str, slb: int, bhrb: bool) -> None:
    cpu = _cpu(name)
    assert cpu.description.name == description
    subsections = cpu.record.subsections
    assert subsections["cpu/slb"].version == slb
    assert ("mig_slb_nr" in subsections["cpu/slb"].fields) == (description == "cpu@ppc64-pre-2.8")
    assert len(subsections["cpu/slb"].fields["env.slb"]) == 64
    assert ("cpu/bhrb" in subsections) == bhrb
    if bhrb:
        assert len(subsections["cpu/bhrb"].fields["env.bhrb"]) == 32
    header = b"\x05\x07cpu/slb" + slb.to_bytes(4, "big")
    assert header in encode_record(cpu)  # written back at the version it came with
