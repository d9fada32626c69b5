"""Codex ExecPlans (`PLANS.md` skeleton): one self-contained plan with living sections,
`Progress` (`- [x] (2025-10-01 13:00Z) Did x`), `Plan of Work`, `Concrete Steps`,
`Validation and Acceptance`, `Decision Log`, `Surprises & Discoveries`, `Outcomes &
Retrospective`. The Progress items are the steps, in order (milestones when Progress is
empty); the plan's context goes with each; Validation and Acceptance is the criteria."""

from __future__ import annotations

import re
from pathlib import Path

from uet_doit.plans.dialects.checklist import checkbox_sync, entries
from uet_doit.plans.dialects.files import item_files, verify_command
from uet_doit.plans.dialects.model import Group, Item, PlanDoc
from uet_doit.plans.plan_markdown import slug

NAME = "execplan"
TITLE = "Codex ExecPlan"
EXAMPLE = "## Progress\n- [x] (2025-10-01 13:00Z) Add the parser\n- [ ] Wire the CLI"

_LIVING = ("progress", "surprises & discoveries", "decision log", "outcomes & retrospective",
           "plan of work", "concrete steps", "validation and acceptance",
           "idempotence and recovery", "context and orientation")  # fmt: skip
_CONTEXT = ("purpose / big picture", "context and orientation", "plan of work", "concrete steps",
            "interfaces and dependencies")  # fmt: skip
_STAMP = re.compile(r"^\(\d{4}-\d{2}-\d{2}[^)]*\)\s*")
_PARTIAL = re.compile(r"(?i)\((?:completed|done):.*remaining:.*\)")


def _sections(text: str) -> dict[str, tuple[int, list[str]]]:
    """Each section by its lower-cased title: (line, [title, its lines...])."""
    out: dict[str, tuple[int, list[str]]] = {}
    current: list[str] | None = None
    for e in entries(text, bullets=True):
        if e.kind == "heading" and e.level <= 3:
            current = [e.text.strip()]
            out.setdefault(e.text.strip().lower(), (e.line, current))
        elif current is not None:
            current.append(e.raw or e.text)
        if current is not None:
            current.extend(t for _, t in e.body)
    return out


def detect(path: Path, text: str) -> str | None:
    names = set(_sections(text))
    living = [n for n in _LIVING if n in names]
    if len(living) >= 3:
        return f"ExecPlan sections ({', '.join(living[:4])})"
    return None


def read(text: str, source: str) -> PlanDoc:
    found = entries(text)
    title = next((e.text for e in found if e.kind == "heading" and e.level == 1), None)
    parts = _sections(text)
    doc = PlanDoc(title, chain_items=True)
    group = Group("execplan", title or "ExecPlan", f"{source}:1", rule="Codex ExecPlan")
    purpose = parts.get("purpose / big picture", (0, [""]))[1][1:]
    group.description = " ".join(ln.strip() for ln in purpose if ln.strip())[:2000] or None
    context = [
        f"## {name}\n" + "\n".join(parts[name][1]).strip() for name in _CONTEXT if name in parts
    ]
    start, _ = parts.get("progress", (0, []))
    end = min((line for line, _ in parts.values() if line > start), default=10**9)
    for e in found:
        if e.kind == "check" and start < e.line < end and e.indent == 0:
            name = _STAMP.sub("", e.text).strip()
            item = Item(slug(_PARTIAL.sub("", name), 48), name, f"{source}:{e.line}")
            item.rule, item.status, item.sync = "ExecPlan Progress item", e.status, checkbox_sync(e)
            if _PARTIAL.search(name):
                item.status = "in-progress"
            group.items.append(item)
    if not group.items:
        for e in found:
            if e.kind == "heading" and re.match(r"(?i)milestone\s+\d+", e.text):
                item = Item(
                    slug(e.text, 48), e.text, f"{source}:{e.line}", rule="ExecPlan milestone"
                )
                item.body = [t for _, t in e.body]
                group.items.append(item)
    validation = parts.get("validation and acceptance", (0, [""]))[1][1:]
    group.criteria = [re.sub(r"^\s*[-*]\s+", "", ln).strip() for ln in validation
                      if re.match(r"^\s*[-*]\s+", ln)]  # fmt: skip
    command = verify_command("\n".join(validation))
    for item in group.items:
        item.creates, item.edits, _ = item_files(item.title, item.body)
        item.body += ["", f"This is one step of the ExecPlan {source}; its context:", *context]
    if group.items and command:
        group.items[-1].validation = command
    doc.groups.append(group)
    return doc
