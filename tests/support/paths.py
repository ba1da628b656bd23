"""Where the project's files are, wherever a test sits in the tree."""

from __future__ import annotations

from pathlib import Path

__all__ = ["CORPUS", "EXAMPLES", "FUZZ", "ROOT", "TESTS"]

#: the project checkout (holds vmstate/, devices/, streams/, compat_fixtures/, tests/)
ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"
#: the real QEMU streams the fixtures were recorded from (compat_fixtures/generate.py)
CORPUS = ROOT / "compat_fixtures" / "streams"
#: the README's example pair (real QEMU streams with a slirp ``save_state`` section)
EXAMPLES = ROOT / "compat_fixtures" / "examples"
#: the fuzzer (``python3 -m tests.fuzz.run``), its committed corpus and crash reproducers
FUZZ = TESTS / "fuzz"
