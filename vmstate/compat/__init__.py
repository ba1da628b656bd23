"""Cross-version compatibility checks: static (schemas) and dynamic (fixture streams).

* ``export_schema`` / ``write_schema``: every description we ship as one JSON schema file;
* ``load_schema`` + ``compare_sets``: compare two schema files (ours or QEMU's
  ``-dump-vmstate``) and report what breaks migration, with severity and direction;
* ``check_fixtures``: load every fixture with today's code, compare it with its golden
  and write it back byte for byte;
* ``record_fixtures``: add fixtures and goldens, never touching recorded ones.

The names below are imported when first used (``vmstate._lazy``): ``vmstate compat --help``
imports none of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vmstate import _lazy

if TYPE_CHECKING:
    from .dynamic import CheckReport, FixtureResult, check_fixtures
    from .errors import CompatError, FixtureError, ImmutableFixtureError, SchemaFormatError
    from .export import SCHEMA_FORMAT, described, export_schema, schema_text, write_schema
    from .findings import BOTH, NEW_TO_OLD, OLD_TO_NEW, DiffReport, Finding
    from .fixtures import FixtureFormat, register_format
    from .model import FieldNode, SchemaSet, VmsdNode
    from .record import adopt_fixtures, record_fixtures
    from .rules import compare_sets
    from .sources import load_schema, schema_from_json

_NAMES = _lazy.exports({
    ".dynamic": ("CheckReport", "FixtureResult", "check_fixtures"),
    ".errors": ("CompatError", "FixtureError", "ImmutableFixtureError", "SchemaFormatError"),
    ".export": ("SCHEMA_FORMAT", "described", "export_schema", "schema_text", "write_schema"),
    ".findings": ("BOTH", "NEW_TO_OLD", "OLD_TO_NEW", "DiffReport", "Finding"),
    ".fixtures": ("FixtureFormat", "register_format"),
    ".model": ("FieldNode", "SchemaSet", "VmsdNode"),
    ".record": ("adopt_fixtures", "record_fixtures"),
    ".rules": ("compare_sets",),
    ".sources": ("load_schema", "schema_from_json"),
})

__all__ = [
    "BOTH",
    "NEW_TO_OLD",
    "OLD_TO_NEW",
    "SCHEMA_FORMAT",
    "CheckReport",
    "CompatError",
    "DiffReport",
    "FieldNode",
    "Finding",
    "FixtureError",
    "FixtureFormat",
    "FixtureResult",
    "ImmutableFixtureError",
    "SchemaFormatError",
    "SchemaSet",
    "VmsdNode",
    "adopt_fixtures",
    "check_fixtures",
    "compare_sets",
    "described",
    "export_schema",
    "load_schema",
    "record_fixtures",
    "register_format",
    "schema_from_json",
    "schema_text",
    "write_schema",
]


def __getattr__(name: str) -> Any:
    return _lazy.load(__name__, _NAMES, name)
