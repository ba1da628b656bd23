"""Export every description we have as one schema file (``vmstate compat schema``).

The file holds, per section, what ``vmstate.schema.description_to_json``
says (every field, version gate, subsection and custom layout), plus one
fact the static check needs and a JSON reader cannot compute: at which
versions each ``exists`` test holds, when the test depends on the version
alone (virtio-net's ``promisc`` byte since version 8).  Tests that read the
device state are marked as depending on it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..description import Description
from ..schema import SCHEMA_VERSION, description_to_json
from .errors import CompatError

__all__ = ["SCHEMA_FORMAT", "described", "export_schema", "schema_text", "write_schema"]

#: the ``format`` value that marks our schema files
SCHEMA_FORMAT = "vmstate-forge-schema"
#: probe no more versions than this per description
_MAX_PROBED_VERSIONS = 256


def described() -> dict[str, Description]:
    """Every description we ship: registry sections, and each virtio device on pci and mmio."""
    # vmstate knows neither devices nor streams at import time: the full set lives in devices/
    from devices import DEFAULT_REGISTRY
    from devices.virtio.sections import DEVICE_CLASSES, section_description

    named: dict[str, Description] = {d.name: d for d in DEFAULT_REGISTRY.descriptions()}
    for name in DEVICE_CLASSES:
        for transport in ("pci", "mmio"):
            named[f"{name}@{transport}"] = section_description(name, transport)
    return dict(sorted(named.items()))


class _Probe:
    """A state view that notices being looked at: such a test depends on the state."""

    def __init__(self) -> None:
        self.touched = False

    def __getattr__(self, name: str) -> Any:
        self.touched = True
        raise AttributeError(name)


def _resolve(qualified: str) -> Callable[..., Any] | None:
    """The test function a schema names, only from modules already imported (never imports)."""
    if "<" in qualified:  # a lambda or a local function has no importable name
        return None
    parts = qualified.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        target: Any = sys.modules.get(".".join(parts[:cut]))
        if target is None:
            continue
        for part in parts[cut:]:
            target = getattr(target, part, None)
        return target if callable(target) else None
    return None


def _exists_versions(test: Callable[..., Any], low: int, high: int) -> list[int] | None:
    """Versions in ``low..high`` where ``test`` holds, or None if it reads the state."""
    held = []
    for version in range(low, min(high, low + _MAX_PROBED_VERSIONS) + 1):
        probe = _Probe()
        try:
            result = bool(test(probe, version))
        except Exception:  # noqa: BLE001 - any test that needs real state raises on the probe
            return None
        if probe.touched:
            return None
        if result:
            held.append(version)
    return held


def _annotate(node: Any, window: tuple[int, int] | None = None) -> None:
    """Add ``exists_versions`` (or ``exists_depends_on_state``) to every gated field, in place."""
    if isinstance(node, list):
        for item in node:
            _annotate(item, window)
        return
    if not isinstance(node, dict):
        return
    if {"name", "version", "minimum_version", "fields"} <= node.keys():
        window = (int(node["minimum_version"]), int(node["version"]))
        for field in node["fields"]:
            if isinstance(field, dict) and isinstance(field.get("exists"), str):
                test = _resolve(field["exists"])
                versions = _exists_versions(test, *window) if test is not None else None
                if versions is None:
                    field["exists_depends_on_state"] = True
                else:
                    field["exists_versions"] = versions
    for value in node.values():
        _annotate(value, window)


def export_schema(descriptions: Mapping[str, Description] | None = None) -> dict[str, Any]:
    """The schema of ``descriptions`` (default: ``described()``) as JSON-ready data."""
    chosen = described() if descriptions is None else descriptions
    sections: dict[str, Any] = {}
    for key in sorted(chosen):
        data = description_to_json(chosen[key])
        data.pop("schema", None)
        _annotate(data)
        sections[key] = data
    return {"format": SCHEMA_FORMAT, "schema": SCHEMA_VERSION, "sections": sections}


def schema_text(descriptions: Mapping[str, Description] | None = None) -> str:
    """The schema file's exact text: stable key order, one item per line."""
    return json.dumps(export_schema(descriptions), indent=1) + "\n"


def write_schema(path: Path, *, force: bool = False, descriptions: Mapping[str, Description] | None = None) -> None:
    """Write the schema to ``path``; an existing file is replaced only with ``force``."""
    if path.exists() and not force:
        raise CompatError(f"{path} exists: a baseline is replaced on purpose only (--force)")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(schema_text(descriptions))
