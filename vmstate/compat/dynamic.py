"""The dynamic check: every recorded fixture loads, decodes to its golden and is written back identically.

``check_fixtures(DIR)`` runs each fixture of a directory (see
``vmstate.compat.fixtures`` for the layout) through today's code.  A fixture
is *incompatible* when its decoding differs from its golden or today's code
does not write it back byte for byte; the check cannot *judge* (exit 2) when
a fixture has no golden, cannot be read at all, or a recorded fixture was
rewritten or deleted.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import attrs

from ..errors import VMStateError
from .fixture_format import DescriptionLookup
from .fixtures import Fixture, discover, read_ledger, verify_ledger

__all__ = ["CheckReport", "FixtureResult", "check_fixture", "check_fixtures", "differences", "explain"]

Status = Literal["ok", "incompatible", "error"]


@attrs.frozen(kw_only=True)
class FixtureResult:
    """One fixture's outcome."""

    fixture: str
    format: str
    status: Status
    #: the decoding equals the golden (None: not compared)
    decoded: bool | None = None
    #: today's code wrote it back byte for byte (None: the format cannot write)
    rewritten: bool | None = None
    problems: tuple[str, ...] = ()
    #: what the write-back kept as read because the state could not decide it
    notes: tuple[str, ...] = ()
    seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        """The result as JSON-ready data."""
        return attrs.asdict(self)


@attrs.frozen(kw_only=True)
class CheckReport:
    """The outcome of ``check_fixtures``."""

    directory: str
    results: tuple[FixtureResult, ...]
    #: recorded fixtures or goldens that were deleted or rewritten
    ledger_problems: tuple[str, ...] = ()
    #: fixtures checked but not in the ledger yet (``vmstate compat record --adopt``)
    unrecorded: tuple[str, ...] = ()

    @property
    def exit_code(self) -> int:
        """0 all compatible, 1 some fixture is not, 2 the check could not judge."""
        if self.ledger_problems or any(r.status == "error" for r in self.results):
            return 2
        return 1 if any(r.status == "incompatible" for r in self.results) else 0

    def as_json(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        return {
            "directory": self.directory,
            "exit_code": self.exit_code,
            "counts": {s: sum(r.status == s for r in self.results) for s in ("ok", "incompatible", "error")},
            "ledger_problems": list(self.ledger_problems),
            "unrecorded": list(self.unrecorded),
            "fixtures": [r.as_json() for r in self.results],
        }

    def render(self, *, verbose: bool = False) -> str:
        """The text report: failing fixtures (all with ``verbose``), ledger problems, a verdict."""
        lines = []
        for result in self.results:
            if result.status == "ok" and not verbose:
                continue
            lines.append(f"{result.status.upper():<13}{result.fixture}")
            lines += [f"    {problem}" for problem in result.problems]
            lines += [f"    note: {note}" for note in result.notes] if verbose else []
        lines += [f"LEDGER       {problem}" for problem in self.ledger_problems]
        if self.unrecorded:
            lines.append(f"note: {len(self.unrecorded)} fixtures are not in the ledger yet "
                         "(vmstate compat record --adopt DIR records them)")
        counts = self.as_json()["counts"]
        verdict = {0: "compatible", 1: "incompatible", 2: "error"}[self.exit_code]
        lines.append(f"{self.directory}: {len(self.results)} fixtures, {counts['ok']} ok, "
                     f"{counts['incompatible']} incompatible, {counts['error']} errors: {verdict}")
        return "\n".join(lines)


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 80 else text[:77] + "..."


def differences(golden: Any, today: Any, path: str = "", limit: int = 5) -> list[str]:
    """Up to ``limit`` places where two JSON values differ, as ``path: golden X, today Y``."""
    found: list[str] = []

    def walk(a: Any, b: Any, where: str) -> None:
        if len(found) >= limit:
            return
        if isinstance(a, dict) and isinstance(b, dict):
            for key in list(a) + [k for k in b if k not in a]:
                if key not in a or key not in b:
                    found.append(f"{where}.{key}: {'only today' if key not in a else 'only in the golden'}")
                else:
                    walk(a[key], b[key], f"{where}.{key}" if where else str(key))
        elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            for index, (x, y) in enumerate(zip(a, b)):
                walk(x, y, f"{where}[{index}]")
        elif a != b:
            found.append(f"{where or '(top)'}: golden {_short(a)}, today {_short(b)}")

    walk(golden, today, path)
    return found


def explain(golden: Any, today: Any, limit: int = 5) -> list[str]:
    """Why a decoding differs from its golden, section by section where it can."""
    if not (isinstance(golden, dict) and isinstance(today, dict)):
        return differences(golden, today, limit=limit)
    old, new = golden.get("sections"), today.get("sections")
    if not (isinstance(old, list) and isinstance(new, list) and len(old) == len(new)):
        return differences(golden, today, limit=limit)
    found = differences({k: v for k, v in golden.items() if k != "sections"},
                        {k: v for k, v in today.items() if k != "sections"}, limit=limit)
    for index, (a, b) in enumerate(zip(old, new)):
        if len(found) >= limit or a == b:
            continue
        where = f"section {a.get('idstr')} v{a.get('version')}"
        if a.get("source") != b.get("source"):
            why = b.get("fallback") or b.get("reason") or ""
            found.append(f"{where}: decoded as {b.get('source')!s}, the golden as {a.get('source')!s}"
                         + (f" ({why})" if why else ""))
        else:
            found += [f"{where}: {d}" for d in differences(a, b, limit=2)]
    return found[:limit]


def check_fixture(fixture: Fixture, descriptions: DescriptionLookup | None = None) -> FixtureResult:
    """Run one fixture through today's code."""
    start = time.perf_counter()
    name = fixture.format.name
    if not fixture.golden.exists():
        return FixtureResult(fixture=fixture.name, format=name, status="error",
                             problems=(f"no golden {fixture.golden.name}: record it with `vmstate compat record`",))
    try:
        golden = json.loads(fixture.golden.read_text())
        outcome = fixture.format.run(fixture.path, descriptions)
    except (VMStateError, OSError, ValueError) as error:
        return FixtureResult(fixture=fixture.name, format=name, status="error", problems=(f"unreadable: {error}",),
                             seconds=time.perf_counter() - start)
    problems = []
    decoded = outcome.decoding == golden
    if not decoded:
        problems += [f"decodes differently from its golden: {why}" for why in explain(golden, outcome.decoding)]
    rewrite = outcome.rewrite
    if rewrite is not None and not rewrite.identical:
        problems.append(f"today's code writes it differently: first difference at byte {rewrite.first_difference:#x} "
                        f"in {rewrite.where}")
    return FixtureResult(
        fixture=fixture.name, format=name, status="ok" if not problems else "incompatible", decoded=decoded,
        rewritten=None if rewrite is None else rewrite.identical, problems=tuple(problems),
        notes=() if rewrite is None else rewrite.notes,
        seconds=round(time.perf_counter() - start, 3),
    )


def check_fixtures(directory: str | Path, *, descriptions: DescriptionLookup | None = None,
                   only: Iterable[str] | None = None) -> CheckReport:
    """Check every fixture of ``directory`` (or those whose name contains one of ``only``)."""
    root = Path(directory)
    ledger = read_ledger(root)
    fixtures = discover(root)
    wanted = list(only) if only is not None else None
    if wanted is not None:
        fixtures = [f for f in fixtures if any(w in f.name for w in wanted)]
        ledger = {k: v for k, v in ledger.items() if any(w in k for w in wanted)}
    results = tuple(check_fixture(f, descriptions) for f in fixtures)
    return CheckReport(
        directory=str(directory),
        results=results,
        ledger_problems=tuple(verify_ledger(root, ledger)),
        unrecorded=tuple(f.name for f in fixtures if f.name not in ledger),
    )
