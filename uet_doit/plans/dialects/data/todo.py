"""Agent TODO lists: a `TODO.md` checklist, Claude Code's todo JSON (`[{content, status,
activeForm}]`) or a Codex plan (`{"plan": [{step, status}]}`); in order, one after another."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from uet_doit.plans.dialects.checklist import read_loose
from uet_doit.plans.dialects.files import item_files
from uet_doit.plans.dialects.model import Group, Item, PlanDoc, status_of
from uet_doit.plans.plan_markdown import slug

NAME = "todo"
TITLE = "agent TODO list"
EXAMPLE = (
    '- [x] Read the failing test\n- [ ] Fix src/parse.py   (or [{"content": ..., "status": ...}])'
)


def _todos(text: str) -> tuple[list[str], list[dict[str, Any]]] | None:
    """(where the list is, the todos) of a JSON todo list, else None."""
    if not text.lstrip().startswith(("[", "{")):
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    at: list[str] = []
    for key in ("plan", "todos"):
        if isinstance(data, dict) and isinstance(data.get(key), list):
            data, at = data[key], [key]
    if (
        isinstance(data, list)
        and data
        and all(
            isinstance(t, dict) and ("content" in t or "step" in t) and "status" in t for t in data
        )
    ):
        return at, data
    return None


def detect(path: Path, text: str) -> str | None:
    todos = _todos(text)
    if todos is not None:
        return f"a JSON list of {len(todos[1])} todos with content/step and status"
    if re.fullmatch(r"(?i)todos?\.md", path.name) and re.search(r"(?m)^\s*[-*]\s+\[[ xX]\]", text):
        return f"the file name {path.name} with checkbox items"
    return None


def read(text: str, source: str) -> PlanDoc:
    found = _todos(text)
    if found is None:
        return read_loose(text, source, "TODO item")
    at, todos = found
    doc = PlanDoc(None, chain_items=True)
    group = Group("todos", "Todos", source, rule="agent todo list")
    used: set[str] = set()
    for i, todo in enumerate(todos):
        name = str(todo.get("content") or todo.get("step"))
        key = str(todo.get("id") or slug(name, 48))
        while key in used:
            key += "-2"
        used.add(key)
        item = Item(key, name, f"{source} [{i}]", rule="agent todo")
        item.status = status_of(todo.get("status"))
        item.creates, item.edits, _ = item_files(name, [])
        item.sync = {"kind": "json", "pointer": [*at, i], "id": todo.get("id"), "done": "completed"}
        group.items.append(item)
    doc.groups.append(group)
    return doc
