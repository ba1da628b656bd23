"""Write or compare the expected decoding (golden JSON) of each fixture stream.

    python compat_fixtures/expected.py --write   # record goldens for new streams
    python compat_fixtures/expected.py           # compare, exit 1 on a difference

Existing goldens are never overwritten unless --force is given: a changed
decoding of an old stream is a compatibility break to look at, not to record.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
STREAMS = HERE / "streams"
EXPECTED = HERE / "expected"


def decoding(stream: Path) -> dict[str, Any]:
    """The summary of a stream as our decoder sees it today."""
    from devices import DEFAULT_REGISTRY
    from streams.files import open_stream
    from streams.qemu import StreamReader, summarize

    with open_stream(stream) as source:
        return summarize(StreamReader(source, descriptions=DEFAULT_REGISTRY))


def golden_path(stream: Path) -> Path:
    name = stream.name
    for suffix in (".xz", ".gz"):
        name = name.removesuffix(suffix)
    return EXPECTED / (name.removesuffix(".mig") + ".json")


def corpus_streams() -> list[Path]:
    """The committed streams, plain and compressed."""
    return sorted(p for pattern in ("*.mig", "*.mig.xz", "*.mig.gz") for p in STREAMS.glob(pattern))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="record goldens for streams that have none")
    parser.add_argument("--force", action="store_true", help="with --write, overwrite existing goldens too")
    args = parser.parse_args(argv)
    EXPECTED.mkdir(exist_ok=True)
    differing = []
    for stream in corpus_streams():
        path = golden_path(stream)
        current = decoding(stream)
        if args.write and (args.force or not path.exists()):
            path.write_text(json.dumps(current, sort_keys=True, separators=(",", ":")) + "\n")
            print(f"wrote {path.relative_to(HERE)}")
        elif not path.exists() or json.loads(path.read_text()) != current:
            differing.append(stream.name)
            print(f"DIFFERS: {stream.name}", file=sys.stderr)
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
