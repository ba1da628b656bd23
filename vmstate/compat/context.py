"""Shared state of one schema comparison: where we are and what was found."""

from __future__ import annotations

import attrs

from .findings import Direction, Finding, Severity
from .model import FieldNode, SizeSemantics, VmsdNode

__all__ = ["Context", "describe_field", "merge", "window"]


def window(node: VmsdNode | None) -> str | None:
    """A vmsd's loadable versions as ``minimum..version``."""
    return None if node is None else f"{node.minimum_version}..{node.version}"


def describe_field(field: FieldNode) -> str:
    """``has_ufo (uint8, 1 byte)``: a field as findings mention it."""
    if field.opaque:
        what = "opaque"
    elif field.size is not None:
        what = f"{field.size} byte{'s' if field.size != 1 else ''}"
    elif field.size_rule:
        what = field.size_rule
    else:
        what = "variable size"
    kind = f"{field.type}, " if field.type else ""
    return f"`{field.name}` ({kind}{what})"


@attrs.define
class Context:
    """Collects findings for one section pair."""

    device: str
    old_sizes: SizeSemantics
    new_sizes: SizeSemantics
    findings: list[Finding] = attrs.Factory(list)

    @property
    def mixed(self) -> bool:
        """One side is a QEMU dump and the other our export: sizes compare element-wise."""
        return self.old_sizes != self.new_sizes

    @property
    def any_qemu(self) -> bool:
        """Either side is a QEMU dump (struct sizes there are C sizes)."""
        return "qemu" in (self.old_sizes, self.new_sizes)

    def add(
        self,
        severity: Severity,
        directions: tuple[Direction, ...],
        rule: str,
        path: str,
        old: VmsdNode | None,
        new: VmsdNode | None,
        reason: str,
    ) -> None:
        """Record one finding."""
        self.findings.append(
            Finding(
                severity=severity,
                directions=directions,
                rule=rule,
                device=self.device,
                path=path,
                old_versions=window(old),
                new_versions=window(new),
                reason=reason,
            )
        )


def merge(findings: list[Finding]) -> list[Finding]:
    """Fold findings that differ only in direction into one naming both directions."""
    merged: dict[tuple[object, ...], Finding] = {}
    for finding in findings:
        key = (finding.severity, finding.rule, finding.device, finding.path, finding.reason,
               finding.old_versions, finding.new_versions)
        seen = merged.get(key)
        if seen is None:
            merged[key] = finding
        else:
            directions = tuple(d for d in ("old->new", "new->old") if d in seen.directions + finding.directions)
            merged[key] = attrs.evolve(seen, directions=directions)
    return list(merged.values())
