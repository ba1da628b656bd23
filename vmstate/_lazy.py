"""Lazy re-exports for package facades (PEP 562): a name is imported the first time it is asked for.

A facade lists its public names by module; ``from vmstate import state``
then imports ``vmstate.typed`` and no more, so a command that needs one
part of a package does not pay for all of it at start-up.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, Mapping

__all__ = ["exports", "load"]


def exports(by_module: Mapping[str, tuple[str, ...]]) -> dict[str, str]:
    """Name -> module (relative, ``.typed``) from module -> names."""
    return {name: module for module, names in by_module.items() for name in names}


def load(package: str, names: Mapping[str, str], name: str) -> Any:
    """The object ``name`` of ``package``'s facade, imported now and kept as a plain attribute after."""
    module = names.get(name)
    if module is None:
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, package), name)
    setattr(sys.modules[package], name, value)
    return value
