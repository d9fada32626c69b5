"""Older task-list workstreams (`tasks`, `files_scope`, `files_create`, `acceptance_tests`):
the one step that carries them. Their acceptance tests mix commands and sentences."""

from __future__ import annotations

from typing import Any

_COMMAND_WORDS = frozenset(
    [
        "pytest",
        "python",
        "python3",
        "py",
        "npm",
        "npx",
        "pnpm",
        "yarn",
        "node",
        "deno",
        "go",
        "cargo",
        "make",
        "bash",
        "sh",
        "pwsh",
        "ruff",
        "mypy",
        "tox",
        "nox",
        "uv",
        "poetry",
        "markdownlint",
        "doit",
        "git",
        "test",
        "flake8",
        "black",
        "eslint",
        "tsc",
        "jest",
        "mvn",
        "gradle",
    ]
)


def looks_like_command(text: str) -> bool:
    """Legacy `acceptance_tests` mix commands and sentences; tell them apart."""
    first = text.strip().split(" ", 1)[0]
    return (
        first in _COMMAND_WORDS or first.endswith((".py", ".sh", ".ps1")) or first.startswith("./")
    )


def tasks_to_step(ws_id: Any, legacy: dict[str, Any], ws: dict[str, Any]) -> dict[str, Any]:
    """One step carrying a task-list workstream: its tasks are the instruction."""
    tasks = [str(t) for t in legacy.get("tasks") or []]
    tests = [str(t) for t in legacy.get("acceptance_tests") or []]
    commands = [t for t in tests if looks_like_command(t)]
    sentences = [t for t in tests if not looks_like_command(t)]
    if sentences:
        ws["completion_criteria"] = [*ws.get("completion_criteria", []), *sentences]
    creates = list(legacy.get("files_create") or [])
    inputs = [f for f in legacy.get("files_scope") or [] if f not in creates]
    step: dict[str, Any] = {
        "step_id": f"{ws_id}-tasks",
        "name": ws.get("name") or f"{ws_id} tasks",
        "context": {
            "files": inputs,
            "create_files": creates,
            "instruction": "\n".join(f"- {t}" for t in tasks)
            or str(ws.get("description") or ws_id),
        },
    }
    if commands:
        step["validation"] = {"test_command": " && ".join(commands)}
    if "capability" in legacy:
        step["task_kind"] = legacy["capability"]
    return step
