"""Cursor plans (`.cursor/plans/<name>.plan.md`): front matter `name`, `overview` and `todos`
(`- id: setup-db`, `content: ...`, `status: pending|in_progress|completed|cancelled`,
sometimes `dependencies: [...]`), a markdown body, often a mermaid flowchart of the order.

Each todo is a step. Its edges are its `dependencies` and the mermaid arrows between todos
(`a --> b`: b after a); with neither, the todos run in their order."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

from uet_doit.plans.dialects.files import item_files
from uet_doit.plans.dialects.model import (
    Group,
    Item,
    PlanDoc,
    as_list,
    front_matter,
    sections,
    status_of,
)

NAME = "cursor"
TITLE = "Cursor plan (.plan.md)"
EXAMPLE = (
    "---\ntodos:\n  - {id: api, content: Add the API, status: pending, dependencies: [db]}\n---"
)

_MERMAID = re.compile(r"```\s*mermaid\s*\n(?P<body>.*?)```", re.S)


def detect(path: Path, text: str) -> str | None:
    meta, _ = front_matter(text)
    todos = meta.get("todos") if meta else None
    if (
        isinstance(todos, list)
        and todos
        and all(isinstance(t, dict) and "content" in t for t in todos)
    ):
        return f"front matter with {len(todos)} todos (id, content, status)"
    return None


def read(text: str, source: str) -> PlanDoc:
    meta, lines = front_matter(text)
    meta = meta or {}
    todos = [t for t in meta.get("todos") or [] if isinstance(t, dict) and "content" in t]
    group = Group("plan", str(meta.get("name") or Path(source).stem), f"{source}:1")
    group.rule = "Cursor plan"
    group.description = str(meta.get("overview") or "") or None
    doc = PlanDoc(group.title, [group])
    ids = {str(t.get("id")) for t in todos if t.get("id")}
    body = "\n".join(text.replace("\r\n", "\n").split("\n")[lines:])
    for name, _, part in sections(body, lines):
        if re.search(r"(?i)acceptance criteria|definition of done|success criteria", name):
            group.criteria += [re.sub(r"^\s*[-*]\s+(\[.\]\s+)?", "", ln).strip()
                               for ln in part if re.match(r"^\s*[-*]\s+", ln)]  # fmt: skip
    context = ["", f"This is one todo of the Cursor plan {source}; the plan:", body.strip()]
    for i, todo in enumerate(todos):
        key = str(todo.get("id") or f"todo-{i + 1}")
        item = Item(key, str(todo["content"]), f"{source} todos[{i}]", rule="Cursor todo")
        item.status = status_of(todo.get("status"))
        item.depends = as_list(todo.get("dependencies"))
        item.creates, item.edits, _ = item_files(item.title, [])
        item.body = context if body.strip() else []
        item.sync = {"kind": "cursor-todo", "id": key}
        group.items.append(item)
    edges = 0
    by_key = {i.key: i for i in group.items}
    for chart in _MERMAID.finditer(body):
        for line in chart.group("body").split("\n"):
            nodes = re.split(r"\s*(?:-->|==>|-\.->)\s*(?:\|[^|]*\|\s*)?", line.strip())
            names = [re.match(r"[A-Za-z0-9_\-]+", n) for n in nodes]
            keys = [n.group() for n in names if n]
            for a, b in itertools.pairwise(keys):
                if a in ids and b in ids and a != b:
                    by_key[b].depends.append(a)
                    edges += 1
    explicit = any(i.depends for i in group.items)
    doc.chain_items = not explicit
    if edges:
        doc.metadata["mermaid_edges"] = edges
    return doc
