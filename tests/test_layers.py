"""Imports point down only and go round in no circle: the layout shows the architecture.

Every import of every module of uet_doit is read with `ast`: at module level, inside a
function, under `if TYPE_CHECKING:`, and module names written as strings ("module:attr",
what lazy tables hand to importlib). A module may import its own package or a lower layer.

Layers, top to bottom (uet_doit/__init__.py's docstring says the same):
  uet_doit (the lazy public names), __main__, testing and fake_tools (fakes for tests)
  cli        arguments -> library calls -> renderers -> exit code
  api, runner   run_bundle, and the `uet run` it makes: they compose run, observe, cache
  plans      things that write bundles (convert, legacy import, bootstrap)
  observe    read a run back: status, monitor, progress and reporters, report, costs, why
  run        the run core: doit bridge, policy, executors, workspaces, forecast, review,
             the step cache's keys and extension (run/step_cache/)
  cache      the step cache's store: blobs, entries, stores, settings, `uet cache`
  tools      how one attempt runs a tool: adapters, routing, prices, redaction, processes
  bundle     the format: model, loader, checks, schema, graph
  state      the run store
  errors, version   leaves
The cache sits below run: run asks it for stored results; it knows nothing of a run.
Where a module is handed an object of a module that imports it, it names what it uses of
that object in a Protocol (a StepExtension gets the StepPolicy: run/extensions.py).
An import inside a function is there to keep a command's start-up light and says so:
`# lazy: start-up time` on its line (or on a comment line right above it).
"""

from __future__ import annotations

import ast
import functools
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import uet_doit

PACKAGE = Path(uet_doit.__file__).parent

#: top to bottom; the names of one tuple are one layer
LAYERS: tuple[tuple[str, ...], ...] = (
    ("", "__main__", "testing", "fake_tools"),
    ("cli",),
    ("api", "runner"),
    ("plans",),
    ("observe",),
    ("run",),
    ("cache",),
    ("tools",),
    ("bundle",),
    ("state",),
    ("errors", "version"),
)


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the imported module (a submodule when `from pkg import submodule`)
    file: Path
    line: int
    how: str  # "module", "function", "typing" or "by name"

    def where(self) -> str:
        return f"{self.file.relative_to(PACKAGE.parent)}:{self.line}"


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _known(name: str) -> str | None:
    """The uet_doit module `name` is (or is in: `pkg.mod.attr` -> `pkg.mod`)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _how(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> str:
    parent = parents.get(node)
    while parent is not None:
        if isinstance(parent, ast.FunctionDef | ast.AsyncFunctionDef):
            return "function"
        if isinstance(parent, ast.If) and "TYPE_CHECKING" in ast.unparse(parent.test):
            return "typing"
        parent = parents.get(parent)
    return "module"


def _imports_of(module: str, path: Path) -> list[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found: list[Import] = []

    def add(name: str, node: ast.stmt | ast.expr, how: str) -> None:
        target = _known(name) if name.split(".", maxsplit=1)[0] == "uet_doit" else None
        if target is not None and target != module:
            found.append(Import(module, target, path, node.lineno, how))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node, _how(node, parents))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package[: len(package) - node.level + 1], *filter(None, [base])])
            for alias in node.names:
                add(f"{base}.{alias.name}", node, _how(node, parents))
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and node.value.startswith("uet_doit.")
            and node.value.partition(":")[0] in MODULES
        ):
            add(node.value.partition(":")[0], node, "by name")
    return found


IMPORTS = [imp for module, path in MODULES.items() for imp in _imports_of(module, path)]


def _layer(module: str) -> int:
    top = module.split(".")[1] if "." in module else ""
    for rank, names in enumerate(LAYERS):
        if top in names:
            return rank
    msg = f"{module} is in no layer: add {top!r} to LAYERS in {__file__} (and the docstrings)"
    raise AssertionError(msg)


def _package(module: str) -> str:
    return ".".join(module.split(".")[:2])


def test_every_module_is_in_a_layer() -> None:
    for module in MODULES:
        _layer(module)


def test_imports_point_down_only() -> None:
    upward = sorted(
        {
            f"{imp.where()}: {imp.source} imports {imp.target} ({imp.how}), a higher layer"
            for imp in IMPORTS
            if _layer(imp.target) < _layer(imp.source)
            and _package(imp.target) != _package(imp.source)
        }
    )
    assert not upward, "imports that point up:\n" + "\n".join(upward)


def _graph(imports: list[Import]) -> dict[str, dict[str, Import]]:
    graph: dict[str, dict[str, Import]] = defaultdict(dict)
    for imp in imports:
        graph[imp.source].setdefault(imp.target, imp)
    return graph


def _groups(graph: dict[str, dict[str, Import]]) -> list[set[str]]:
    """The groups of modules that import each other, round and round (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[set[str]] = []

    def visit(node: str) -> None:  # recursion depth is bounded by the module count
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in list(graph):
        if node not in index:
            visit(node)
    return groups


def _cycles(imports: list[Import]) -> list[list[Import]]:
    """One shortest cycle through each group of modules that import each other."""
    graph = _graph(imports)
    cycles = []
    for group in _groups(graph):
        start = min(group)
        paths: dict[str, list[Import]] = {start: []}
        queue = [start]
        while queue:  # breadth first: the shortest way back to `start`
            node = queue.pop(0)
            for nxt, imp in sorted(graph[node].items()):
                if nxt == start:
                    cycles.append([*paths[node], imp])
                    queue = []
                    break
                if nxt in group and nxt not in paths:
                    paths[nxt] = [*paths[node], imp]
                    queue.append(nxt)
    return cycles


#: imports that still close a circle, each with what removes it; delete an entry when it does
KNOWN_CYCLES: dict[tuple[str, str], str] = {}


def test_no_import_cycles() -> None:
    known = [i for i in IMPORTS if (i.source, i.target) in KNOWN_CYCLES]
    rest = [i for i in IMPORTS if (i.source, i.target) not in KNOWN_CYCLES]
    found = [
        "\n".join(f"  {imp.where()}: {imp.source} imports {imp.target} ({imp.how})" for imp in c)
        for c in _cycles(rest)
    ]
    assert not found, "modules that import each other, round and round:\n" + "\n\n".join(found)
    groups = _groups(_graph(IMPORTS))
    closing = {
        (i.source, i.target) for i in known if any({i.source, i.target} <= g for g in groups)
    }
    stale = sorted(set(KNOWN_CYCLES) - closing)
    assert not stale, f"these imports close no circle now: delete them from KNOWN_CYCLES: {stale}"


#: what an import inside a function says for itself, with why: `# lazy: start-up time`
LAZY_MARK = "# lazy:"


@functools.cache
def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def _marked(imp: Import) -> bool:
    """The mark is on the import's (first) line, or a comment line right above it says it."""
    lines = _lines(imp.file)
    above = lines[imp.line - 2].strip() if imp.line > 1 else ""
    return LAZY_MARK in lines[imp.line - 1] or above.startswith(LAZY_MARK)


def test_imports_inside_functions_say_why() -> None:
    """No import inside a function to dodge a circle: one is there only to keep a command's
    start-up light (`uet --version`, `uet list`, `uet run`, plain `doit`), and says so."""
    unmarked = sorted(
        {
            f"{imp.where()}: {imp.source} imports {imp.target}"
            for imp in IMPORTS
            if imp.how == "function" and not _marked(imp)
        }
    )
    assert not unmarked, (
        "imports inside a function without a '# lazy: <why>' mark: move each to module level,"
        " or, when a command's start-up would load what it does not need (measure with"
        " `python -X importtime`), mark it '# lazy: start-up time':\n" + "\n".join(unmarked)
    )


def test_the_checker_sees_every_kind_of_import(tmp_path: Path) -> None:
    """The walker itself: relative, function-level, TYPE_CHECKING and by-name imports count,
    and a circle is named import by import."""
    fake = tmp_path / "policy.py"
    fake.write_text(
        "from typing import TYPE_CHECKING\n"
        "from .budget import CostLedger\n"
        "if TYPE_CHECKING:\n"
        "    from uet_doit.cli import main\n"
        "def f():\n"
        "    import uet_doit.observe.status\n"
        "TABLE = {'x': 'uet_doit.plans.convert:convert'}\n"
    )
    found = {(i.target, i.how) for i in _imports_of("uet_doit.run.policy", fake)}
    assert found == {
        ("uet_doit.run.budget", "module"),
        ("uet_doit.cli.main", "typing"),
        ("uet_doit.observe.status", "function"),
        ("uet_doit.plans.convert", "by name"),
    }
    lazy = tmp_path / "lazy.py"
    lazy.write_text(
        "def f():\n"
        "    import uet_doit.errors  # lazy: start-up time\n"
        "    # lazy: start-up time\n"
        "    import uet_doit.version\n"
        "    import uet_doit.state.store\n"
    )
    marks = {i.target: _marked(i) for i in _imports_of("uet_doit.run.lazy", lazy)}
    assert marks == {
        "uet_doit.errors": True,
        "uet_doit.version": True,
        "uet_doit.state.store": False,
    }
    loop = [
        Import("a", "b", fake, 1, "module"),
        Import("b", "c", fake, 2, "function"),
        Import("c", "a", fake, 3, "typing"),
        Import("c", "d", fake, 4, "module"),
    ]
    assert [[i.target for i in c] for c in _cycles(loop)] == [["b", "c", "a"]]
