"""The files and commands a plan item names: paths in code spans and plain words, which of
them the item creates and which it works on (by the verb of its line), and the test command
its verification gives. Shared by every dialect, so they all read files the same way."""

from __future__ import annotations

import re

from uet_doit.plans.plan_markdown import EDIT, is_path, paths_in_text

_SPAN = re.compile(r"`([^`\n]+)`")
#: a bare `name.ext` in a code span is a file only with an extension files have: `sys.exit`,
#: `Document.path` and `Vector2d.distanceWith` are code
_FILE_EXT = frozenset(
    [
        "py",
        "pyi",
        "ts",
        "tsx",
        "js",
        "jsx",
        "mjs",
        "cjs",
        "md",
        "mdx",
        "rst",
        "txt",
        "json",
        "jsonl",
        "yaml",
        "yml",
        "toml",
        "cfg",
        "ini",
        "env",
        "lock",
        "sh",
        "bash",
        "zsh",
        "ps1",
        "go",
        "rs",
        "java",
        "kt",
        "kts",
        "cs",
        "fs",
        "rb",
        "php",
        "c",
        "h",
        "cc",
        "cpp",
        "hpp",
        "m",
        "mm",
        "swift",
        "dart",
        "vue",
        "svelte",
        "css",
        "scss",
        "sass",
        "less",
        "html",
        "htm",
        "xml",
        "svg",
        "sql",
        "proto",
        "graphql",
        "gql",
        "prisma",
        "tf",
        "hcl",
        "gradle",
        "ex",
        "exs",
        "erl",
        "clj",
        "cljs",
        "cljc",
        "edn",
        "lua",
        "r",
        "jl",
        "scala",
        "ipynb",
        "csv",
        "tsv",
        "conf",
        "properties",
        "dockerfile",
        "mk",
        "cmake",
        "nix",
        "zig",
        "astro",
        "sol",
    ]
)


def paths_of(text: str) -> list[str]:
    """Project paths an item names: code spans that are paths, and plain `a/b.py` words;
    `file.py:12-40` is the file."""
    found: list[str] = []
    for raw in _SPAN.findall(text):
        span = re.sub(r":\d+(?:-\d+)?$", "", raw.strip()).removeprefix("./")
        bare_ok = span.rsplit(".", 1)[-1].lower() in _FILE_EXT or span.startswith(".")
        if is_path(span, strict=False) and ("/" in span or ("." in span.lstrip(".") and bare_ok)):
            found.append(span)
    plain = _SPAN.sub(" ", text)
    plain = re.sub(r"(\S):\d+(?:-\d+)?\b", r"\1", plain)
    found += paths_in_text(plain)
    return [p for p in dict.fromkeys(found) if not p.startswith(("http", "www."))]


def split_files(title: str, paths: list[str]) -> tuple[list[str], list[str], list[str]]:
    """(create, edit, folders): an item that modifies/updates/fixes edits its files; one that
    creates or implements makes them; folders are left to the instruction."""
    files = [p for p in paths if not p.endswith("/")]
    folders = [p for p in paths if p.endswith("/")]
    # `Add the route to src/api.py`: the file is there already, the item changes it
    into = [p for p in files if re.search(rf"(?i)\b(?:to|into)\s+`?(?:\./)?{re.escape(p)}", title)]
    if into:
        rest = [p for p in files if p not in into]
        made, changed, _ = split_files(title, rest) if rest else ([], [], [])
        return made, into + changed, folders
    verb = re.sub(r"^\W*(?:[A-Z]+-?\d+(?:\.\d+)*\s+)?(?:\[[^\]]*\]\s*)*", "", title)
    if EDIT.match(verb) or _CHANGES.match(verb):
        return [], files, folders
    return files, [], folders


_CHANGES = re.compile(
    r"(?i)(verify|test|run|check|ensure|confirm|document|remove|delete|drop|replace|rewrite"
    r"|clean|integrate|wire|migrate|port|convert|rework|tighten|harden|deprecate)\b"
)
_LABEL = re.compile(r"(?i)^\**(?:sub-?)?(?:task|step)\s*[\d.]+\**\s*[:.\-]?\s*\**\s*")
_MAKES = re.compile(r"(?i)^(create|add|write|implement|build|generate|scaffold|new|make)\b")


def item_files(title: str, body: list[str]) -> tuple[list[str], list[str], list[str]]:
    """(create, edit, folders) of an item: a body line's own verb (`- Update src/a.ts`)
    decides for the paths on it, else the title's verb."""
    creates, edits, folders = split_files(title, paths_of(title))
    title_edits = not creates and bool(edits)
    for line in body:
        text = re.sub(r"^\s*(?:[-*+]|\d+[.)])?\s*(?:\[.\]\s*)?", "", line)
        text = _LABEL.sub("", text)
        paths = paths_of(text)
        if not paths:
            continue
        own_edit = EDIT.match(text) or _CHANGES.match(text)
        c, e, f = split_files(text if (own_edit or _MAKES.match(text)) else title, paths)
        if title_edits and not _MAKES.match(text):
            c, e = [], e + c
        creates += c
        edits += e
        folders += f
    edits = list(dict.fromkeys(edits))
    creates = [p for p in dict.fromkeys(creates) if p not in edits]
    return creates, edits, list(dict.fromkeys(folders))


_TEST_RUNNER = re.compile(
    r"^(?:[A-Z_][A-Z0-9_]*=\S+\s+)*"  # `UV_PROJECT_ENVIRONMENT=.venv uv run pytest`
    r"(?:(?:npx|pnpm|yarn|bun|uv run|poetry run|python3? -m)\s+)?(?:pytest|jest|vitest|mocha"
    r"|tox|nox|ruff|mypy|eslint|tsc|go test|cargo test|cargo clippy|make (?:test|check|lint)"
    r"|npm (?:run )?test|pnpm (?:run )?test|yarn test|bun test|dotnet test|mvn test|gradle test"
    r"|rspec|phpunit|playwright test|\./gradlew test)\b"
)


#: a plan is untrusted: a command that needs a shell (`pytest; curl ... | sh`) is not taken
_SHELL = re.compile(r"[;&|<>$`\\(){}\n]")


def verify_command(text: str) -> str | None:
    """The first command in backticks that runs tests or checks (`npm test`, `pytest -q`):
    a plan's verification, runnable as the step's validation. Prose is never a command, nor
    is anything that needs a shell."""
    for raw in re.findall(r"`([^`\n]+)`", text):
        span = str(raw).strip().removeprefix("$ ").strip()
        if _TEST_RUNNER.match(span) and not _SHELL.search(span) and verify_argv(span):
            return span
    return None


def verify_argv(command: str) -> list[str] | None:
    """The command as argv (run without a shell); `VAR=x cmd` becomes `env VAR=x cmd`."""
    import shlex

    try:
        parts = shlex.split(command)
    except ValueError:
        return None
    if parts and re.match(r"^[A-Z_][A-Z0-9_]*=", parts[0]):
        parts = ["env", *parts]
    return parts or None
