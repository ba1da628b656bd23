"""The arrows between the layers hold (docs/layers in the README).

Every import in ``vmstate/``, ``devices/`` and ``streams/`` is read with
``ast`` — lazy ones inside functions included — and checked against the
layer rule:

* the **core** (``vmstate`` without its application layer) imports neither
  ``devices`` nor ``streams`` nor the application layer;
* ``streams`` never imports ``devices`` nor the application layer;
* ``devices`` imports the core and the stream model (``streams.records``)
  only: never a reader, a writer or a file;
* the **application layer** (``vmstate.cli``, ``vmstate.compat``,
  ``vmstate.diff`` and the command packages beside them) may import anything;
* no module imports itself around a circle (``cycles``), not even lazily.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support.paths import ROOT as _ROOT

ROOT = _ROOT
PACKAGES = ("vmstate", "devices", "streams")
#: the application layer: modules and subpackages of vmstate that sit on top of everything
APPLICATION = ("vmstate.cli", "vmstate.cli_support", "vmstate.compat", "vmstate.diff", "vmstate.dump", "vmstate.edit",
               "vmstate.preflight")
#: the stream model: the one part of streams that devices may use
STREAM_MODEL = ("streams.records",)


def _within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def layer_of(module: str) -> str:
    """``core``, ``application``, ``streams``, ``model`` or ``devices``."""
    if _within(module, APPLICATION):
        return "application"
    if _within(module, STREAM_MODEL):
        return "model"
    return {"vmstate": "core", "streams": "streams", "devices": "devices"}[module.split(".")[0]]


#: which layers each layer may import
ALLOWED = {
    "core": {"core"},
    "model": {"core", "model"},
    "streams": {"core", "model", "streams"},
    "devices": {"core", "model", "devices"},
    "application": {"core", "model", "streams", "devices", "application"},
}


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, root: Path = ROOT) -> list[tuple[int, str]]:
    """(line, imported name) for every import of one of our packages in ``path``, lazy ones too.

    ``from a.b import c`` gives ``a.b.c``: ``c`` may be a module or a name in ``a.b`` (see ``_importable``).
    """
    module = _module_name(path, root)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
                names = [f"{target}.{alias.name}" for alias in node.names]
            else:
                assert node.module is not None
                names = [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found.extend((node.lineno, name) for name in names if name.split(".")[0] in PACKAGES)
    return found


def _importable(name: str, root: Path) -> str:
    """The longest prefix of ``name`` that is one of our modules (``from x import y`` names y too)."""
    parts = name.split(".")
    while parts:
        candidate = root.joinpath(*parts)
        if candidate.with_suffix(".py").is_file() or (candidate / "__init__.py").is_file():
            return ".".join(parts)
        parts.pop()
    return name


def our_modules(root: Path) -> list[Path]:
    return sorted(p for package in PACKAGES if (root / package).is_dir() for p in (root / package).rglob("*.py"))


def violations(root: Path = ROOT) -> list[str]:
    """One line per import against the rule: ``file:line: layer module imports layer module``."""
    wrong = []
    for path in our_modules(root):
        module = _module_name(path, root)
        for line, name in imports_of(path, root):
            target = _importable(name, root)
            if layer_of(target) not in ALLOWED[layer_of(module)]:
                wrong.append(f"{path.relative_to(root)}:{line}: {layer_of(module)} {module} imports {layer_of(target)} {target}")
    return sorted(set(wrong))


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """Each of our modules and the modules it imports (lazy imports too)."""
    graph = {}
    for path in our_modules(root):
        module = _module_name(path, root)
        graph[module] = {_importable(name, root) for _, name in imports_of(path, root)} - {module}
    return graph


def cycles(root: Path = ROOT) -> list[list[str]]:
    """The modules that import each other around a circle, one sorted list per circle (Tarjan's SCCs)."""
    graph = import_graph(root)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in sorted(graph[module] & graph.keys()):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            circle = stack[stack.index(module):]
            del stack[stack.index(module):]
            if len(circle) > 1:
                found.append(sorted(circle))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return sorted(found)


def test_every_import_follows_the_layer_rule() -> None:
    assert violations() == []


def test_no_modules_import_each_other_in_a_circle() -> None:
    """streams.formats and the snapshots package once did, lazily: formats picks the snapshot reader, convert sits above."""
    assert cycles() == []


@pytest.mark.parametrize(
    ("module", "layer"),
    [
        ("vmstate.engine", "core"),
        ("vmstate.lookup", "core"),
        ("vmstate.compat.record", "application"),
        ("vmstate.diff", "application"),
        ("vmstate.cli", "application"),
        ("streams.records", "model"),
        ("streams.qemu.reader", "streams"),
        ("devices.virtio.net", "devices"),
    ],
)
def test_layers_are_named_as_the_docs_say(module: str, layer: str) -> None:
    assert layer_of(module) == layer


def _write_tree(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def test_the_checker_flags_lazy_and_relative_imports_against_the_rule(tmp_path: Path) -> None:
    """A rule that could not fail would prove nothing: a small tree with one wrong arrow of each kind."""
    files = {
        "vmstate/__init__.py": "",
        "vmstate/engine.py": "def decode():\n    from devices import registry\n",
        "vmstate/compat/__init__.py": "from devices import registry\nfrom streams.qemu import reader\n",
        "streams/__init__.py": "",
        "streams/records.py": "from vmstate import engine\n",
        "streams/qemu/__init__.py": "",
        "streams/qemu/reader.py": "from ..records import x\nfrom vmstate.compat import y\n",
        "devices/__init__.py": "",
        "devices/registry.py": "from streams.records import x\nfrom streams.qemu import reader\n",
    }
    _write_tree(tmp_path, files)
    assert violations(tmp_path) == [
        "devices/registry.py:2: devices devices.registry imports streams streams.qemu.reader",
        "streams/qemu/reader.py:2: streams streams.qemu.reader imports application vmstate.compat",
        "vmstate/engine.py:2: core vmstate.engine imports devices devices.registry",
    ]


def test_the_cycle_check_finds_a_lazy_circle_through_a_package(tmp_path: Path) -> None:
    files = {
        "streams/__init__.py": "",
        "streams/formats.py": "def _snapshot():\n    from .snaps import Reader\n",
        "streams/snaps/__init__.py": "from ._files import load\n",
        "streams/snaps/_files.py": "from streams.formats import open_records\n",
        "streams/convert.py": "from .formats import open_records\nfrom .snaps import load\n",
    }
    _write_tree(tmp_path, files)
    assert cycles(tmp_path) == [["streams.formats", "streams.snaps", "streams.snaps._files"]]
    (tmp_path / "streams/snaps/_files.py").write_text("from streams.files import open_stream\n")
    assert cycles(tmp_path) == []
