"""A section version above 0xFFFF that QEMU really writes: eeprom93xx's 20061113 (dc390's EEPROM).

The matrix's dc390 streams (compat_fixtures/matrix/) stopped at the section
before the EEPROM: the boundary scan took its header for data.
"""

from __future__ import annotations

import io
import lzma

import pytest

from compat_fixtures.generate import vmdesc_span
from devices import DEFAULT_REGISTRY
from streams.qemu import SectionHeader, StreamReader, check_stream
from tests.support.paths import ROOT

STREAMS = [ROOT / "compat_fixtures" / "matrix" / "streams" / machine / "dc390.7.2.mig.xz"
           for machine in ("pc-i440fx-7.2", "pc-q35-7.2")]


@pytest.mark.parametrize("path", STREAMS, ids=lambda p: p.parent.name)
def test_a_dc390_stream_reencodes_identically(path) -> None:  # type: ignore[no-untyped-def]
    data = lzma.decompress(path.read_bytes())
    report = check_stream(io.BytesIO(data), io.BytesIO(data), descriptions=DEFAULT_REGISTRY)
    assert report.identical and report.raw_bytes == 0 and not report.unnamed
    headers = [r for r in StreamReader(io.BytesIO(data)) if isinstance(r, SectionHeader) and r.idstr]
    assert [h.version for h in headers if h.idstr.endswith("/eeprom")] == [20061113]


def test_without_its_vmdesc_the_eeprom_header_is_still_a_boundary() -> None:
    """No vmdesc names the version then: QEMU's known large version is what the scan accepts."""
    data = lzma.decompress(STREAMS[0].read_bytes())
    span = vmdesc_span(data)
    assert span is not None
    cut = data[: span[0] - 5]  # through the EOF byte: 00, then 06 and the be32 length are gone
    records = list(StreamReader(io.BytesIO(cut), descriptions=DEFAULT_REGISTRY))
    idstrs = [r.idstr for r in records if isinstance(r, SectionHeader) and r.idstr]
    assert "0000:00:02.0/eeprom" in idstrs and "0000:00:02.0/pciespscsi" in idstrs
