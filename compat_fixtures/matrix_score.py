#!/usr/bin/env python3
"""Hold the static check against the cross-version matrix: false alarms and misses.

For each machine type of ``compat_fixtures/matrix/``, ``vmstate compat diff``
compares QEMU 7.2's ``-dump-vmstate`` (``dump-vmstate/<target>-<machine>.json``)
with 10.0's (``dump-vmstate/10.0/<target>-<machine>-7.2.json``): ``old->new``
is a 7.2 stream loaded by 10.0.  A row's direction is *predicted* to fail
when the check reports an error in that direction for a device type behind
one of the sections the writer's stream holds (the row's own device type for
its sections, else the types both dumps list under that vmsd name).  A
direction QEMU refused to start (a migration blocker) is no load and is not
counted; nor is a failure its controls show within one version (the writer
failing to load the very stream it wrote, or the reader its own stream of the
same VM: no static comparison of two versions can see that).

    python3 -m compat_fixtures.matrix_score        # one line per machine type, then every disagreement
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compat_fixtures.cross_version import row_sections
from vmstate.compat import DiffReport, SchemaSet, compare_sets, load_schema

__all__ = ["DIRECTIONS", "DUMPS", "Score", "dump_pair", "load_matrix", "predicted_failures", "score"]

HERE = Path(__file__).resolve().parent
MATRIX = HERE / "matrix"
DUMPS = HERE / "dump-vmstate"
#: matrix direction -> the static check's direction (old = 7.2, new = 10.0)
DIRECTIONS = {"7.2->10.0": "old->new", "10.0->7.2": "new->old"}
_OLD_DUMPS = {"pc-i440fx-7.2": "x86_64-pc", "pc-q35-7.2": "x86_64-q35", "pseries-7.2": "ppc64-pseries",
              "virt-7.2": "aarch64-virt"}
_TARGETS = {"pc-i440fx-7.2": "x86_64", "pc-q35-7.2": "x86_64", "pseries-7.2": "ppc64", "virt-7.2": "aarch64"}


@dataclass
class Score:
    """How the check's errors meet the loads QEMU saw fail, per (device, direction)."""

    machine: str
    hits: list[tuple[str, str]] = field(default_factory=list)
    false_alarms: list[tuple[str, str, str]] = field(default_factory=list)
    misses: list[tuple[str, str, str]] = field(default_factory=list)
    quiet: int = 0
    #: failed loads that fail within one version too (a control failed): not a cross-version finding
    within_a_version: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def precision(self) -> float:
        """Hits over predicted failures (1.0 when nothing was predicted)."""
        predicted = len(self.hits) + len(self.false_alarms)
        return len(self.hits) / predicted if predicted else 1.0

    @property
    def recall(self) -> float:
        """Hits over failed loads (1.0 when nothing failed)."""
        failed = len(self.hits) + len(self.misses)
        return len(self.hits) / failed if failed else 1.0

    def line(self) -> str:
        """One summary line."""
        return (f"{self.machine}: {len(self.hits)} failures predicted, {len(self.false_alarms)} false alarms, "
                f"{len(self.misses)} misses, {self.quiet} quiet loads that completed; precision "
                f"{self.precision:.2f}, recall {self.recall:.2f}; {len(self.within_a_version)} failures "
                "left out (the same VM fails within one version too)")


def load_matrix(machine: str) -> dict[str, Any]:
    """The committed matrix of one machine type."""
    return json.loads((MATRIX / f"{machine}.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def dump_pair(machine: str) -> tuple[Path, Path]:
    """QEMU 7.2's and 10.0's ``-dump-vmstate`` files for ``machine``."""
    return DUMPS / f"{_OLD_DUMPS[machine]}.json", DUMPS / "10.0" / f"{_TARGETS[machine]}-{machine}.json"


def _owners(report: DiffReport, direction: str) -> set[str]:
    """The device types an error in ``direction`` is about (both sides of a paired label)."""
    found: set[str] = set()
    for finding in report.findings:
        if finding.severity == "error" and direction in finding.directions:
            found.update(finding.device.split(" ~ "))
    return found


def _types(vmsd: str, device: str, old: SchemaSet, new: SchemaSet) -> set[str]:
    """The dump types a section of vmsd ``vmsd`` in ``device``'s row can be."""
    named = {k for s in (old, new) for k, v in s.sections.items() if v.name == vmsd}
    if device in named:
        return {device}
    both = {k for k in named if k in old.sections and k in new.sections}
    return both or named


def predicted_failures(sections: Iterable[list[Any]], device: str, owners: set[str], old: SchemaSet,
                       new: SchemaSet) -> list[str]:
    """The types behind ``sections`` (vmdesc idstrs) that the check says break."""
    vmsds = {str(s[0]).rsplit("/", 1)[-1] for s in sections}
    return sorted(t for vmsd in vmsds for t in _types(vmsd, device, old, new) if t in owners)


def score(machine: str, errors: dict[str, set[str]] | None = None) -> Score:
    """Score the static check (or ``errors``: types with an error per check direction) on one machine type."""
    old_path, new_path = dump_pair(machine)
    old, new = load_schema(old_path), load_schema(new_path)
    if errors is None:
        report = compare_sets(old, new)
        errors = {d: _owners(report, d) for d in DIRECTIONS.values()}
    result = Score(machine)
    matrix = load_matrix(machine)
    for row in matrix["rows"]:
        for direction, check_direction in DIRECTIONS.items():
            entry = row[direction]
            if entry["outcome"] not in ("completed", "failed"):
                continue  # refused before any load (a migration blocker)
            sections = row_sections(matrix, row, direction)
            blamed = predicted_failures(sections, row["device"], errors[check_direction], old, new)
            controls = entry.get("controls", {})
            if entry["outcome"] == "failed" and any(c != "completed" for c in controls.values()):
                result.within_a_version.append((row["device"], direction, ", ".join(
                    f"{k}: {v}" for k, v in controls.items() if v != "completed")))
            elif entry["outcome"] == "failed":
                if blamed:
                    result.hits.append((row["device"], direction))
                else:
                    result.misses.append((row["device"], direction, " | ".join(entry["messages"][-2:])))
            elif blamed:
                result.false_alarms.append((row["device"], direction, ", ".join(blamed)))
            else:
                result.quiet += 1
    return result


def machines() -> list[str]:
    """The machine types the matrix has data for."""
    return sorted(p.stem for p in MATRIX.glob("*.json"))


def main() -> int:
    for machine in machines():
        result = score(machine)
        print(result.line())
        for device, direction, why in result.false_alarms:
            print(f"  false alarm {device} {direction}: {why}")
        for device, direction, why in result.misses:
            print(f"  miss {device} {direction}: {why}")
        for device, direction, why in result.within_a_version:
            print(f"  left out {device} {direction}: {why}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
