"""Snapshot size and encode/decode throughput: msgpack vs CBOR vs JSON vs QEMU's binary stream.

One large stream is made first: a real fixture whose ``pc.ram`` block is
grown to ``--ram-mib`` MiB and filled with pages (random ones, and every
``--zero-every``-th page uniform) written with our encoder.  Then, on that
same stream and in the same run:

* QEMU binary: decode = ``StreamReader`` over the file; encode = reading it
  and writing it back with ``StreamWriter``, minus the decode time;
* each codec: encode = reading the QEMU file and ``write_records``, minus
  the QEMU decode time; decode = ``read_records`` (checksum pass included)
  over the snapshot; and a check that the records write back QEMU's bytes.

Throughput is MB (10^6 bytes) of QEMU stream per second; ratios are
against the QEMU binary figures of this run.  Run from the repository root::

    python3 benchmarks/snapshot_codecs.py --ram-mib 256
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devices import DEFAULT_REGISTRY  # noqa: E402
from streams.qemu import (  # noqa: E402
    RamBlockList,
    RamEos,
    RamFlag,
    RamPage,
    RamZero,
    StreamReader,
    StreamRecord,
    StreamWriter,
)
from streams.snapshots import CODECS, read_records, write_records  # noqa: E402

PAGE = 4096
BASE = ROOT / "compat_fixtures" / "streams" / "pc-7.2-virtio-net-legacy.mig"


def grown(records: Iterator[StreamRecord], ram_bytes: int, zero_every: int, seed: int) -> Iterator[StreamRecord]:
    """The base stream with ``pc.ram`` grown to ``ram_bytes`` and the new pages sent before the last EOS."""
    rng = random.Random(seed)
    buffered: list[StreamRecord] = []
    added_from = 0
    for record in records:
        if isinstance(record, RamBlockList):
            blocks = []
            for block in record.blocks:
                if block.name == "pc.ram":
                    added_from = block.length
                    block = attrs.evolve(block, length=max(block.length, ram_bytes))
                blocks.append(block)
            record = attrs.evolve(record, total=sum(b.length for b in blocks), blocks=tuple(blocks))
        buffered.append(record)
        if isinstance(record, RamEos):
            yield from buffered[:-1]
            buffered = [record]
    # buffered starts with the stream's last EOS: the new pages go before it
    for n, offset in enumerate(range(added_from, ram_bytes, PAGE)):
        continue_flag = RamFlag.CONTINUE if n else 0
        if zero_every and n % zero_every == zero_every - 1:
            yield RamZero("pc.ram", offset, RamFlag.ZERO | continue_flag, 0)
        else:
            yield RamPage("pc.ram", offset, RamFlag.PAGE | continue_flag, rng.randbytes(PAGE))
    yield from buffered


def make_stream(target: Path, ram_mib: int, zero_every: int) -> None:
    with open(BASE, "rb") as source, open(target, "wb") as sink:
        records = StreamReader(source, descriptions=DEFAULT_REGISTRY)
        StreamWriter(sink).write_all(grown(iter(records), ram_mib << 20, zero_every, seed=1))


def timed(action: Any) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


class _HashSink:
    def __init__(self) -> None:
        self.hash = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        return len(data)


def _sha256(path: Path) -> bytes:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.digest()


def measure(stream: Path, workdir: Path) -> dict[str, Any]:
    size = stream.stat().st_size

    def qemu_decode() -> None:
        with open(stream, "rb") as source:
            for _ in StreamReader(source, descriptions=DEFAULT_REGISTRY):
                pass

    def qemu_copy() -> None:
        with open(stream, "rb") as source, open(workdir / "copy.mig", "wb") as sink:
            StreamWriter(sink).write_all(StreamReader(source, descriptions=DEFAULT_REGISTRY))  # type: ignore[arg-type]

    decode_s = timed(qemu_decode)
    encode_s = max(timed(qemu_copy) - decode_s, 1e-9)
    (workdir / "copy.mig").unlink()
    results: dict[str, Any] = {"qemu": {"bytes": size, "encode_s": encode_s, "decode_s": decode_s}}
    expected = _sha256(stream)
    for codec in CODECS:
        path = workdir / f"snapshot.{codec}"

        def encode(path: Path = path, codec: str = codec) -> None:
            with open(stream, "rb") as source, open(path, "wb") as sink:
                write_records(StreamReader(source, descriptions=DEFAULT_REGISTRY), sink, codec=codec)

        def decode(path: Path = path) -> None:
            with open(path, "rb") as source:
                for _ in read_records(source, descriptions=DEFAULT_REGISTRY):
                    pass

        codec_encode_s = max(timed(encode) - decode_s, 1e-9)
        codec_decode_s = timed(decode)
        back = _HashSink()
        with open(path, "rb") as source:
            StreamWriter(back).write_all(read_records(source, descriptions=DEFAULT_REGISTRY))  # type: ignore[arg-type]
        results[codec] = {
            "bytes": path.stat().st_size,
            "encode_s": codec_encode_s,
            "decode_s": codec_decode_s,
            "identical": back.hash.digest() == expected,
        }
        path.unlink()
    return results


def report(results: dict[str, Any], stream_bytes: int) -> str:
    base = results["qemu"]
    lines = [
        f"stream: {stream_bytes / 1e6:.1f} MB of QEMU binary; throughput in MB of stream per second",
        f"{'format':<8} {'size MB':>9} {'size x':>7} {'enc MB/s':>9} {'enc x':>6} {'dec MB/s':>9} {'dec x':>6}  back",
    ]
    for name, row in results.items():
        enc = stream_bytes / row["encode_s"] / 1e6
        dec = stream_bytes / row["decode_s"] / 1e6
        lines.append(
            f"{name:<8} {row['bytes'] / 1e6:>9.1f} {row['bytes'] / base['bytes']:>7.3f} {enc:>9.0f} "
            f"{base['encode_s'] / row['encode_s']:>6.2f} {dec:>9.0f} {base['decode_s'] / row['decode_s']:>6.2f}"
            f"  {'identical' if row.get('identical', True) else 'DIFFERS'}"
        )
    lines.append("size x: size / QEMU's; enc x, dec x: throughput / QEMU binary's (higher is faster)")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ram-mib", type=int, default=256, help="guest RAM in the generated stream (MiB)")
    parser.add_argument("--zero-every", type=int, default=4, help="every n-th new page is uniform (0: none)")
    parser.add_argument("--stream", type=Path, help="benchmark this QEMU stream instead of generating one")
    parser.add_argument("--json", action="store_true", help="print the raw figures as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vmstate-bench-") as tmp:
        workdir = Path(tmp)
        stream = args.stream
        if stream is None:
            stream = workdir / "large.mig"
            print(f"generating a stream with {args.ram_mib} MiB of RAM ...", file=sys.stderr)
            make_stream(stream, args.ram_mib, args.zero_every)
        results = measure(stream, workdir)
        size = os.path.getsize(stream)
    print(json.dumps(results, indent=2) if args.json else report(results, size))
    return 0 if all(r.get("identical", True) for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
