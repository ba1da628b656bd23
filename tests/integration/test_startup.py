"""Start-up imports only what a command needs (issue 14 part 1).

Each command runs in a fresh interpreter that writes, at exit, the modules
it imported: what a command must not pull in is checked by name, never by
time (speed is shown by benchmarks).
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import click
import pytest

from tests.support.paths import CORPUS, EXAMPLES

_PROGRAM = """
import atexit, json, sys
out, program, *args = sys.argv[1:]
atexit.register(lambda: open(out, "w").write(json.dumps(sorted(sys.modules))))
if program == "vmstate":
    from vmstate.cli import main
else:
    from vmstate.diff.cli import main
sys.argv = [program, *args]
main()
"""

#: what no command but diff and compat needs: the comparison, its dependency, the compatibility checks
_DIFF_AND_COMPAT = ("deepdiff", "vmstate.diff", "vmstate.compat")
#: what --help needs none of: the descriptions, the codecs, attrs
_DECODING = ("devices", "streams", "attr", "attrs", "vmstate.description", "vmstate.engine")


def _imported(tmp_path: Path, program: str, *args: str | Path) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    out = tmp_path / "modules.json"
    done = subprocess.run([sys.executable, "-c", _PROGRAM, str(out), program, *map(str, args)],
                          capture_output=True, text=True, timeout=120, check=False)
    return done, json.loads(out.read_text())


def _under(modules: list[str], packages: tuple[str, ...]) -> list[str]:
    return [m for m in modules if any(m == p or m.startswith(p + ".") for p in packages)]


@pytest.mark.parametrize("args", [("--help",), ("dump", "--help"), ("check", "--help")])
def test_help_imports_neither_the_decoder_nor_diff_nor_compat(tmp_path: Path, args: tuple[str, ...]) -> None:
    done, modules = _imported(tmp_path, "vmstate", *args)
    assert done.returncode == 0, done.stderr
    assert "Usage: vmstate" in done.stdout
    assert _under(modules, _DIFF_AND_COMPAT + _DECODING) == []


def test_the_top_level_help_still_lists_the_lazy_command_groups(tmp_path: Path) -> None:
    done, modules = _imported(tmp_path, "vmstate", "--help")
    listed = {line.split()[0] for line in done.stdout.split("Commands:")[1].splitlines() if line.strip()}
    assert {"diff", "compat", "dump", "check", "describe", "extract", "convert"} <= listed
    assert "deepdiff" not in modules


@pytest.mark.parametrize("as_json", [False, True])
def test_dump_imports_neither_diff_nor_compat(tmp_path: Path, as_json: bool) -> None:
    done, modules = _imported(tmp_path, "vmstate", "dump", *(["--json"] if as_json else []),
                              CORPUS / "pc-7.2-virtio-net-modern.mig")
    assert done.returncode == 0, done.stderr
    assert "virtio-net" in done.stdout
    assert _under(modules, _DIFF_AND_COMPAT) == []


def test_dump_of_a_pc_stream_imports_the_devices_it_has_and_no_other(tmp_path: Path) -> None:
    done, modules = _imported(tmp_path, "vmstate", "dump", CORPUS / "pc-7.2-virtio-net-modern.mig")
    assert done.returncode == 0, done.stderr
    assert {"devices.machine.x86_cpu", "devices.machine.pc_chipset", "devices.virtio.net"} <= set(modules)
    assert _under(modules, ("devices.machine.ppc", "devices.virtio.gpu", "devices.virtio.blk", "devices.virtio.serial")) == []


def test_migration_diff_help_imports_no_deepdiff(tmp_path: Path) -> None:
    done, modules = _imported(tmp_path, "migration-diff", "--help")
    assert done.returncode == 0, done.stderr
    assert _under(modules, ("deepdiff", "vmstate.diff.compare", "devices", "streams")) == []


def test_vmstate_diff_and_compat_still_run_through_the_lazy_group(tmp_path: Path) -> None:
    a, b = EXAMPLES / "pc-net-balloon-before.mig.xz", EXAMPLES / "pc-net-balloon-after.mig.xz"
    done, modules = _imported(tmp_path, "vmstate", "diff", a, b)
    assert done.returncode == 1, done.stderr
    assert "virtio.device.num_pages: 0 -> 2048" in done.stdout
    assert "vmstate.diff.compare" in modules
    done, _ = _imported(tmp_path, "vmstate", "compat", "--help")
    assert done.returncode == 0 and "schema" in done.stdout


@pytest.mark.parametrize("package", ["vmstate", "vmstate.diff", "vmstate.compat", "devices.machine", "devices.virtio"])
def test_every_public_name_of_a_lazy_facade_resolves_to_its_module_s_object(package: str) -> None:
    facade = importlib.import_module(package)
    for name in facade.__all__:
        value = getattr(facade, name)
        if name != "__version__":
            home = importlib.import_module(facade._NAMES[name], package)
            assert value is getattr(home, name), name
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        getattr(facade, "nonexistent")


def test_importing_the_vmstate_facade_alone_imports_no_submodule(tmp_path: Path) -> None:
    code = "import sys, vmstate; print(sorted(m for m in sys.modules if m.startswith('vmstate')))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "['vmstate', 'vmstate._lazy']"


@pytest.mark.parametrize("name", ["diff", "compat"])
def test_the_lazy_groups_help_line_is_the_command_s_own(name: str) -> None:
    from vmstate.cli import _LazyGroup, cli

    module, attribute, line = _LazyGroup.LAZY[name]
    command = getattr(importlib.import_module(module), attribute)
    assert command.get_short_help_str(200) == line
    assert cli.get_command(click.Context(cli), name) is command
