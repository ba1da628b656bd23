"""What the static check reports: findings with severity and direction, and their rendering.

Directions are named from the point of view of a migration between the old
and the new code: ``old->new`` is new code loading a stream old code wrote
(upgrading), ``new->old`` is old code loading a stream new code wrote
(downgrading, or migrating back).  Severities:

* ``error``: the destination refuses or misreads every stream in which the
  affected part is on the wire;
* ``warning``: it breaks for some streams or states, or changes the bytes
  written, in ways the schema cannot fully decide;
* ``info``: compatible, worth knowing (a properly gated new field, a rename
  that the wire never sees).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

import attrs

__all__ = ["BOTH", "NEW_TO_OLD", "OLD_TO_NEW", "SEVERITIES", "DiffReport", "Direction", "Finding", "Severity"]

Severity = Literal["error", "warning", "info"]
Direction = Literal["old->new", "new->old"]
OLD_TO_NEW: Direction = "old->new"
NEW_TO_OLD: Direction = "new->old"
BOTH: tuple[Direction, ...] = (OLD_TO_NEW, NEW_TO_OLD)
#: most severe first
SEVERITIES: tuple[Severity, ...] = ("error", "warning", "info")


@attrs.frozen(kw_only=True)
class Finding:
    """One difference between two schemas and what it does to migration."""

    severity: Severity
    #: the migration directions it breaks (for ``info``: the ones it concerns)
    directions: tuple[Direction, ...]
    #: a stable rule id, e.g. ``field-removed``
    rule: str
    #: the section key (``virtio-net@pci``, or QEMU's device type name)
    device: str
    #: where in the section: fields joined by ``.``, a nested vmsd or subsection in braces
    path: str
    #: the version window (``minimum..version``) of the enclosing vmsd, old and new
    old_versions: str | None
    new_versions: str | None
    reason: str

    def as_json(self) -> dict[str, Any]:
        """The finding as JSON-ready data."""
        return {
            "severity": self.severity,
            "directions": list(self.directions),
            "rule": self.rule,
            "device": self.device,
            "path": self.path,
            "old_versions": self.old_versions,
            "new_versions": self.new_versions,
            "reason": self.reason,
        }

    def render(self) -> str:
        """Two lines: what and where, then why."""
        versions = f"v{self.old_versions or '-'} -> v{self.new_versions or '-'}"
        where = f"{self.device}: {self.path}" if self.path else self.device
        head = f"{self.severity.upper():<8}{', '.join(self.directions):<20} {where}  ({versions})"
        return f"{head}\n        {self.rule}: {self.reason}"


def _sort_key(finding: Finding) -> tuple[int, str, str, str]:
    return (SEVERITIES.index(finding.severity), finding.device, finding.path, finding.rule)


def _sorted(findings: Iterable[Finding]) -> tuple[Finding, ...]:
    return tuple(sorted(findings, key=_sort_key))


@attrs.frozen(kw_only=True)
class DiffReport:
    """The outcome of comparing two schema sets."""

    old: str
    new: str
    #: most severe first, then by device and path
    findings: tuple[Finding, ...] = attrs.field(converter=_sorted)
    #: the section pairs compared: a key, or ``old key ~ new key`` when matched by vmsd name
    compared: tuple[str, ...] = ()
    only_old: tuple[str, ...] = ()
    only_new: tuple[str, ...] = ()
    #: ``key`` (same format on both sides) or ``vmsd name`` (ours against a QEMU dump)
    matched_by: str = "key"
    notes: tuple[str, ...] = ()

    def count(self, severity: Severity) -> int:
        """How many findings have ``severity``."""
        return sum(1 for f in self.findings if f.severity == severity)

    def breaking(self, fail_on: Severity = "warning") -> list[Finding]:
        """Findings at least as severe as ``fail_on``."""
        limit = SEVERITIES.index(fail_on)
        return [f for f in self.findings if SEVERITIES.index(f.severity) <= limit]

    def exit_code(self, fail_on: Severity = "warning") -> int:
        """0 compatible, 1 incompatible (diff(1) style)."""
        return 1 if self.breaking(fail_on) else 0

    def as_json(self, fail_on: Severity = "warning") -> dict[str, Any]:
        """The whole report as JSON-ready data, findings most severe first."""
        return {
            "old": self.old,
            "new": self.new,
            "compatible": not self.breaking(fail_on),
            "counts": {s: self.count(s) for s in SEVERITIES},
            "matched_by": self.matched_by,
            "compared": list(self.compared),
            "only_old": list(self.only_old),
            "only_new": list(self.only_new),
            "notes": list(self.notes),
            "findings": [f.as_json() for f in self.findings],
        }

    def render(self, fail_on: Severity = "warning", *, show_info: bool = True) -> str:
        """The human report: a header, one entry per finding, a verdict."""
        lines = [
            f"old: {self.old}",
            f"new: {self.new}",
            (f"compared {len(self.compared)} sections (matched by {self.matched_by}); "
             f"{len(self.only_old)} only in old, {len(self.only_new)} only in new"),
        ]
        lines += [f"note: {note}" for note in self.notes]
        shown = [f for f in self.findings if show_info or f.severity != "info"]
        lines += [f.render() for f in shown]
        verdict = "incompatible" if self.breaking(fail_on) else "compatible"
        counts = ", ".join(f"{self.count(s)} {s}{'s' if self.count(s) != 1 else ''}" for s in SEVERITIES)
        lines.append(f"result: {verdict} ({counts})")
        return "\n".join(lines)
