"""The library returns data and the CLI prints it: the command line is parsed only in
`uet_doit/cli/` (and `__main__`), and the rooms that read and write bundles and runs print
nothing of their own."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import uet_doit

PACKAGE = Path(uet_doit.__file__).parent
#: where argparse belongs: the command line
CLI_FILES = ("cli/", "__main__.py")
#: rooms whose modules return data or raise; the CLI renders what they give
QUIET_ROOMS = ("bundle/", "plans/", "cache/", "observe/", "state/")
#: modules of those rooms that write to a standard stream, and why they may (none now: the
#: log handler is tools/debug_log.py, the step cache's warning run/step_cache/extension.py)
STREAM_WRITERS: set[str] = set()


@functools.cache
def sources() -> dict[str, str]:
    """Every module of the package, by its path inside it."""
    return {
        path.relative_to(PACKAGE).as_posix(): path.read_text(encoding="utf-8")
        for path in sorted(PACKAGE.rglob("*.py"))
    }


def parsed(word: str) -> dict[str, ast.Module]:
    """The modules whose text holds `word`, parsed (the others cannot hold what we look for)."""
    return {name: ast.parse(text, name) for name, text in sources().items() if word in text}


def imports_argparse(tree: ast.AST) -> bool:
    """An `import argparse` or `from argparse import ...` anywhere, in a function too."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(
            a.name.split(".")[0] == "argparse" for a in node.names
        ):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "argparse":
            return True
    return False


def writes_to_a_stream(tree: ast.AST) -> bool:
    """A call of print(), or sys.stdout / sys.stderr named."""
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "print"
        ):
            return True
        if (
            isinstance(node, ast.Attribute)
            and node.attr in ("stdout", "stderr")
            and isinstance(node.value, ast.Name)
            and node.value.id == "sys"
        ):
            return True
    return False


def test_the_checks_see_what_they_look_for() -> None:
    assert imports_argparse(ast.parse("def f():\n    import argparse\n"))
    assert imports_argparse(ast.parse("from argparse import Namespace\n"))
    assert not imports_argparse(ast.parse("import argparsex\n# argparse\n"))
    assert writes_to_a_stream(ast.parse("print('x')\n"))
    assert writes_to_a_stream(ast.parse("import sys\nsys.stdout.write('x')\n"))
    assert not writes_to_a_stream(ast.parse("console.print('x')\nout.write('x')\n"))


def test_only_the_cli_parses_the_command_line() -> None:
    assert len(sources()) > 100 and "cli/main.py" in sources()  # the walk found the package
    outside = [
        name
        for name, tree in parsed("argparse").items()
        if not name.startswith(CLI_FILES) and imports_argparse(tree)
    ]
    assert outside == [], "argparse belongs in uet_doit/cli/; return data or raise instead"


def test_the_library_rooms_print_nothing_of_their_own() -> None:
    candidates = {**parsed("print"), **parsed("sys")}
    found = {
        name
        for name, tree in candidates.items()
        if name.startswith(QUIET_ROOMS) and writes_to_a_stream(tree)
    }
    assert found - STREAM_WRITERS == set(), "return the data; cli/render*.py prints it"
    assert STREAM_WRITERS - found == set(), "a module no longer writes: drop it from the list"
