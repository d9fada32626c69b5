"""`uet bootstrap [DIR]`: look at a project once and write the files uet needs to run in it.

Detection only reads file names and a few config files; the AI CLIs are found on PATH and API
keys by the *names* of set variables (a key's value is never read into anything written).
Output is deterministic, so a second run changes nothing, and a file the user has edited is
kept (with a diff of what bootstrap would write) unless `--force` is given.
"""

from __future__ import annotations

import difflib
import json
import os
import shutil
import tomllib
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from uet_doit.errors import UetError, UsageError
from uet_doit.tools.adapters import ai_tools

API_KEY_VARS = (
    "ANTHROPIC_API_KEY",
    "OPENAI_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "AZURE_OPENAI_API_KEY",
    "OPENROUTER_API_KEY",
    "DEEPSEEK_API_KEY",
    "MISTRAL_API_KEY",
    "GROQ_API_KEY",
    "XAI_API_KEY",
    "COHERE_API_KEY",
    "TOGETHER_API_KEY",
)
IGNORED_DIRS = frozenset({
    ".git", "node_modules", ".venv", "venv", "env", "__pycache__", ".mypy_cache", ".uet",
    ".ruff_cache", ".pytest_cache", ".tox", ".nox", "dist", "build", "target", ".eggs", ".idea",
    ".vscode", "site-packages", ".next", "vendor", ".terraform",
})  # fmt: skip
LANGUAGES = {
    ".py": "python", ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript",
    ".jsx": "javascript", ".ts": "typescript", ".tsx": "typescript", ".go": "go",
    ".rs": "rust", ".java": "java", ".kt": "kotlin", ".rb": "ruby", ".php": "php",
    ".cs": "csharp", ".c": "c", ".h": "c", ".cpp": "cpp", ".cc": "cpp", ".hpp": "cpp",
    ".swift": "swift", ".scala": "scala", ".lua": "lua", ".sh": "shell", ".bash": "shell",
    ".ps1": "powershell", ".psm1": "powershell", ".sql": "sql", ".r": "r",
}  # fmt: skip
DOC_EXTENSIONS = frozenset([".md", ".markdown", ".rst", ".adoc"])
PACKAGE_FILES = (
    ("pyproject.toml", "pip"), ("requirements.txt", "pip"), ("setup.py", "pip"),
    ("Pipfile", "pipenv"), ("poetry.lock", "poetry"), ("uv.lock", "uv"),
    ("package.json", "npm"), ("pnpm-lock.yaml", "pnpm"), ("yarn.lock", "yarn"),
    ("go.mod", "go"), ("Cargo.toml", "cargo"), ("Gemfile", "bundler"),
    ("composer.json", "composer"), ("pom.xml", "maven"), ("build.gradle", "gradle"),
    ("build.gradle.kts", "gradle"),
)  # fmt: skip
LINTER_FILES = (
    ("ruff", ("ruff.toml", ".ruff.toml")),
    ("eslint", (".eslintrc", ".eslintrc.js", ".eslintrc.cjs", ".eslintrc.json", ".eslintrc.yml",
                "eslint.config.js", "eslint.config.mjs", "eslint.config.cjs", "eslint.config.ts")),
    ("markdownlint", (".markdownlint.json", ".markdownlint.jsonc", ".markdownlint.yaml",
                      ".markdownlint.yml", ".markdownlintrc", ".markdownlint-cli2.jsonc",
                      ".markdownlint-cli2.yaml")),
    ("flake8", (".flake8",)),
    ("mypy", ("mypy.ini", ".mypy.ini")),
    ("prettier", (".prettierrc", ".prettierrc.json", ".prettierrc.yaml", "prettier.config.js")),
    ("golangci-lint", (".golangci.yml", ".golangci.yaml")),
)  # fmt: skip
#: what bootstrap writes: never counted as project files, so a second run sees the same project
OWN_FILES = frozenset(["PROJECT_PROFILE.yaml", "router_config.json", "dodo.py", ".gitignore"])
GITIGNORE_ENTRIES = (".doit.db*", ".uet/")
DODO = '''"""doit entry point written by `uet bootstrap`: each bundle in workstreams/ is tasks."""

from uet_doit import DOIT_CONFIG, bundle_task_generators

globals().update(bundle_task_generators("workstreams"))

__all__ = ["DOIT_CONFIG"]  # doit reads it from here: durable backend, recording reporter
'''
MAX_FILES = 200_000


def _scan(root: Path) -> tuple[Counter[str], int, bool]:
    """Count files by extension, skipping tool and dependency folders; say if cut short."""
    counts: Counter[str] = Counter()
    total = 0
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in IGNORED_DIRS and not d.endswith(".egg-info"))
        for name in files:
            if folder == str(root) and name in OWN_FILES:
                continue
            counts[Path(name).suffix.lower()] += 1
            total += 1
            if total >= MAX_FILES:
                return counts, total, True
    return counts, total, False


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _ini_has(path: Path, section: str) -> bool:
    try:
        return f"[{section}]" in path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False


def _linters(
    root: Path, pyproject: dict[str, Any], package: dict[str, Any]
) -> list[dict[str, str]]:
    found: list[dict[str, str]] = []
    tools = pyproject.get("tool", {}) if isinstance(pyproject.get("tool"), dict) else {}
    for name, files in LINTER_FILES:
        config = next((f for f in files if (root / f).exists()), None)
        if config is None and name in tools:
            config = "pyproject.toml"
        if config is None and name == "eslint" and "eslintConfig" in package:
            config = "package.json"
        if config is None and name == "flake8" and _ini_has(root / "setup.cfg", "flake8"):
            config = "setup.cfg"
        if config:
            found.append({"name": name, "config": config})
    return found


def _test_tools(
    root: Path, pyproject: dict[str, Any], package: dict[str, Any], python: bool
) -> list[dict[str, str]]:
    found: list[dict[str, str]] = []
    script = (
        package.get("scripts", {}).get("test") if isinstance(package.get("scripts"), dict) else None
    )
    has_npm = isinstance(script, str) and "no test specified" not in script
    others = has_npm or (root / "go.mod").exists() or (root / "Cargo.toml").exists()
    pytest_reason = None
    if (root / "pytest.ini").exists() or (root / "conftest.py").exists():
        pytest_reason = "pytest.ini" if (root / "pytest.ini").exists() else "conftest.py"
    elif "pytest" in pyproject.get("tool", {}):
        pytest_reason = "[tool.pytest] in pyproject.toml"
    elif _ini_has(root / "tox.ini", "pytest") or _ini_has(root / "setup.cfg", "tool:pytest"):
        pytest_reason = "pytest section in tox.ini/setup.cfg"
    elif ((root / "tests").is_dir() or (root / "test").is_dir()) and (python or not others):
        pytest_reason = "tests/ folder"
    if pytest_reason:
        found.append({"name": "pytest", "command": "pytest", "reason": pytest_reason})
    if has_npm:
        found.append(
            {"name": "npm", "command": "npm test", "reason": "scripts.test in package.json"}
        )
    if (root / "go.mod").exists():
        found.append({"name": "go", "command": "go test ./...", "reason": "go.mod"})
    if (root / "Cargo.toml").exists():
        found.append({"name": "cargo", "command": "cargo test", "reason": "Cargo.toml"})
    return found


def detect(root: Path) -> dict[str, Any]:
    """What the project is made of, its tools, and the AI CLIs and key names available."""
    counts, total, truncated = _scan(root)
    languages: Counter[str] = Counter()
    for ext, n in counts.items():
        if ext in LANGUAGES:
            languages[LANGUAGES[ext]] += n
    docs = sum(counts[ext] for ext in DOC_EXTENSIONS)
    code = sum(languages.values())
    ranked = sorted(languages.items(), key=lambda kv: (-kv[1], kv[0]))
    if code == 0 and docs == 0:
        kind = "empty"
    elif docs > code:
        kind = "documentation"
    else:
        kind = ranked[0][0]
    pyproject = _read_toml(root / "pyproject.toml")
    package = _read_json(root / "package.json")
    return {
        "name": root.resolve().name,
        "kind": kind,
        "files_scanned": total,
        "scan_truncated": truncated,
        "languages": dict(ranked),
        "docs": {
            "markdown_files": counts[".md"] + counts[".markdown"],
            "docs_folder": (root / "docs").is_dir(),
            "mkdocs": (root / "mkdocs.yml").exists() or (root / "mkdocs.yaml").exists(),
            "sphinx": (root / "docs" / "conf.py").exists() or (root / "conf.py").exists(),
        },
        "package_managers": [
            {"name": n, "file": f} for f, n in PACKAGE_FILES if (root / f).exists()
        ],
        "test_tools": _test_tools(root, pyproject, package, "python" in languages),
        "linters": _linters(root, pyproject, package),
        "git": (root / ".git").exists(),
        "ai_tools": {
            "available": [t for t in ai_tools() if shutil.which(t)],
            "api_keys_set": [v for v in API_KEY_VARS if os.environ.get(v)],
        },
    }


def _route(kind: str, patterns: list[str], tools: list[str], priority: str) -> dict[str, Any]:
    return {"task_kind": kind, "file_patterns": patterns, "tools": tools, "priority": priority}


def router_config(profile: dict[str, Any]) -> dict[str, Any]:
    """Routes for the tools actually found, each list ordered by preference (fallbacks last)."""
    ai = list(profile["ai_tools"]["available"])
    runners = [t["name"] for t in profile["test_tools"]]
    patterns = sorted(
        {f"*{ext}" for ext, lang in LANGUAGES.items() if lang in profile["languages"]}
    )
    routes: list[dict[str, Any]] = []
    if ai:
        routes.append(_route("docs", ["*.md", "docs/**"], ai, "high"))
        routes.append(_route("code_edit", patterns or ["*"], ai, "high"))
    if runners:
        routes.append(_route("testing", ["tests/**", "test/**"], runners, "critical"))
    tools: dict[str, Any] = {name: {"max_parallel": 2, "timeout_seconds": 1800} for name in ai}
    tools.update({name: {"max_parallel": 1, "timeout_seconds": 900} for name in runners})
    return {"default_tools": ai, "routes": routes, "tools": tools}


def _profile_text(profile: dict[str, Any]) -> str:
    header = "# Written by `uet bootstrap`; edit freely (re-run with --force to regenerate).\n"
    return header + yaml.safe_dump(profile, sort_keys=True, default_flow_style=False)


def _put(root: Path, name: str, text: str, force: bool) -> str:
    """Write one artefact unless the user changed it; returns what happened, for the report."""
    path = root / name
    if path.exists():
        try:
            current = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UetError(f"cannot read {path}: {exc}") from exc
        if current == text:
            return f"unchanged {name}"
        if not force:
            diff = difflib.unified_diff(
                current.splitlines(),
                text.splitlines(),
                f"{name} (yours)",
                f"{name} (bootstrap)",
                lineterm="",
            )
            return f"kept {name}: it differs from what bootstrap would write:\n" + "\n".join(diff)
    try:
        existed = path.exists()
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UetError(f"cannot write {path}: {exc.strerror}") from exc
    return f"{'overwrote' if existed else 'wrote'} {name}"


def _gitignore(root: Path) -> str:
    path = root / ".gitignore"
    # surrogateescape: odd bytes in a user's .gitignore are written back as they were
    current = path.read_text("utf-8", "surrogateescape") if path.exists() else ""
    have = {line.strip().strip("/") for line in current.splitlines()}
    missing = [e for e in GITIGNORE_ENTRIES if e.strip("/") not in have]
    if not missing:
        return "unchanged .gitignore"
    prefix = "" if not current or current.endswith("\n") else "\n"
    text = current + prefix + "# uet run state\n" + "".join(f"{e}\n" for e in missing)
    try:
        path.write_text(text, "utf-8", "surrogateescape")
    except OSError as exc:
        raise UetError(f"cannot write {path}: {exc.strerror}") from exc
    return f"added {', '.join(missing)} to .gitignore"


def bootstrap(root: Path, force: bool = False) -> tuple[list[str], dict[str, Any]]:
    """Detect, then write the artefacts; returns one report line per artefact and the profile."""
    if not root.is_dir():
        raise UsageError(f"{root} is not a directory", "give the project folder: uet bootstrap DIR")
    profile = detect(root)
    report = [
        _put(root, "PROJECT_PROFILE.yaml", _profile_text(profile), force),
        _put(root, "router_config.json", _json(router_config(profile)), force),
        _put(root, "dodo.py", DODO, force),
    ]
    for folder in (".uet", "workstreams"):
        existed = (root / folder).is_dir()
        (root / folder).mkdir(exist_ok=True)
        report.append(f"{'unchanged' if existed else 'created'} {folder}/")
    report.append(_gitignore(root))
    return report, profile


def _json(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, sort_keys=True) + "\n"
