"""Run the dynamic compatibility check in any project's pytest.

Without the plugin, one test checks a whole fixture directory::

    from vmstate.compat.pytest_plugin import assert_fixtures_compatible

    def test_migration_compatibility():
        assert_fixtures_compatible("tests/compat_fixtures")

With the plugin (``pytest -p vmstate.compat.pytest_plugin``, or
``pytest_plugins = ["vmstate.compat.pytest_plugin"]`` in the root
``conftest.py``) each fixture is its own test.  Name the directories in the
configuration and take the ``vmstate_compat_fixture`` argument::

    # pyproject.toml
    [tool.pytest.ini_options]
    vmstate_compat_dirs = ["tests/compat_fixtures"]

    # test_compat.py
    def test_fixture(vmstate_compat_fixture):
        vmstate_compat_fixture.check()

``--vmstate-compat-dir DIR`` (repeatable) adds directories on the command
line.  ``check(descriptions=...)`` takes a description lookup
(``(idstr, instance_id, version) -> Description | None``) for projects with
descriptions of their own; the default is this project's registry.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import attrs
import pytest

from .dynamic import CheckReport, FixtureResult, check_fixture, check_fixtures
from .fixture_format import DescriptionLookup
from .fixtures import Fixture, discover, read_ledger, verify_ledger

__all__ = ["CompatCase", "assert_fixtures_compatible", "compat_cases", "pytest_addoption", "pytest_generate_tests"]

_INI = "vmstate_compat_dirs"
_OPTION = "--vmstate-compat-dir"


@attrs.frozen
class CompatCase:
    """One fixture of one directory, as a test parameter."""

    directory: Path
    fixture: Fixture

    def check(self, descriptions: DescriptionLookup | None = None) -> FixtureResult:
        """Fail the test unless the fixture is intact, decodes to its golden and is written back identically."""
        ledger = {k: v for k, v in read_ledger(self.directory).items() if k == self.fixture.name}
        problems = verify_ledger(self.directory, ledger)
        result = check_fixture(self.fixture, descriptions)
        problems += list(result.problems)
        if problems:
            pytest.fail(f"{self.fixture.name}:\n  " + "\n  ".join(problems), pytrace=False)
        return result


def compat_cases(directories: Iterable[str | Path]) -> list[CompatCase]:
    """Every fixture of the directories, for ``pytest.mark.parametrize``."""
    return [CompatCase(Path(d), f) for d in directories for f in discover(Path(d))]


def assert_fixtures_compatible(directory: str | Path, *, descriptions: DescriptionLookup | None = None,
                               only: Iterable[str] | None = None) -> CheckReport:
    """Fail the calling test unless every fixture of ``directory`` passes the dynamic check."""
    report = check_fixtures(directory, descriptions=descriptions, only=only)
    if report.exit_code:
        pytest.fail(report.render(), pytrace=False)
    return report


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add the ``vmstate_compat_dirs`` ini option and ``--vmstate-compat-dir``."""
    parser.addini(_INI, "fixture directories for vmstate_compat_fixture tests", type="paths", default=[])
    parser.addoption(_OPTION, action="append", default=[], metavar="DIR",
                     help="a fixture directory for vmstate_compat_fixture tests (repeatable)")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize tests taking ``vmstate_compat_fixture`` with every fixture of the configured directories."""
    if "vmstate_compat_fixture" not in metafunc.fixturenames:
        return
    config = metafunc.config
    directories = [*config.getini(_INI), *config.getoption(_OPTION)]
    if not directories:
        raise pytest.UsageError(f"vmstate_compat_fixture needs {_INI} in the pytest configuration or {_OPTION}")
    cases = compat_cases(directories)
    metafunc.parametrize("vmstate_compat_fixture", cases, ids=[c.fixture.name for c in cases])
