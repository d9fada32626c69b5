"""Conductor track plans (`conductor/tracks/<track>/plan.md`, Gemini CLI): `## Phase N: Title`
over `- [ ] Task: Title` items with their sub-steps nested; `[~]` in progress, `[x]` done
(often with the commit, `[x] Task: Add x [a1b2c3d]`). Phases and tasks run in order."""

from __future__ import annotations

import re
from pathlib import Path

from uet_doit.plans.dialects.checklist import body_text, checkbox_sync, entries
from uet_doit.plans.dialects.files import item_files
from uet_doit.plans.dialects.model import Group, Item, PlanDoc

NAME = "conductor"
TITLE = "Conductor track plan.md"
EXAMPLE = "## Phase 1: Storage\n- [ ] Task: Create the schema in db/schema.sql"

_TASK = re.compile(r"^Task:\s*(?P<title>.+?)(?:\s+\[?(?P<sha>[0-9a-f]{7,40})\]?)?$")
_PHASE = re.compile(
    r"(?i)^phase\s+(?P<num>\d+)\s*[:.\-]?\s*(?P<title>.*?)(?:\s+\[checkpoint:[^\]]*\])?$"
)


def detect(path: Path, text: str) -> str | None:
    tasks = sum(1 for e in entries(text) if e.kind == "check" and _TASK.match(e.text))
    if "conductor/tracks/" in path.as_posix() and tasks:
        return f"a plan under conductor/tracks/ with {tasks} `- [ ] Task:` items"
    if tasks >= 2 and re.search(r"(?im)^##\s+phase\s+\d", text):
        return f"{tasks} `- [ ] Task: ...` items under `## Phase N` headings"
    return None


def read(text: str, source: str) -> PlanDoc:
    found = entries(text)
    title = next((e.text for e in found if e.kind == "heading" and e.level == 1), None)
    doc = PlanDoc(title, chain_items=True, chain_groups=True)
    group: Group | None = None
    last: Item | None = None
    for e in found:
        if e.kind == "heading":
            m = _PHASE.match(e.text)
            if m:
                num = m.group("num")
                group = Group(f"phase-{num}", e.text, f"{source}:{e.line}", rule="Conductor phase")
                doc.groups.append(group)
                last = None
            continue
        m = _TASK.match(e.text)
        if m and group is not None and (last is None or e.indent <= last.metadata["_indent"]):
            key = f"{group.key.removeprefix('phase-')}.{len(group.items) + 1}"
            last = Item(key, m.group("title"), f"{source}:{e.line}", rule="Conductor task")
            last.status, last.sync = e.status, checkbox_sync(e)
            last.metadata["_indent"] = e.indent
            if m.group("sha"):
                last.metadata["commit"] = m.group("sha")
            last.body = body_text(e.body)
            group.items.append(last)
        elif last is not None:
            last.body += [e.raw.strip() or e.text, *body_text(e.body)]
    for g in doc.groups:
        for item in g.items:
            item.metadata.pop("_indent", None)
            item.creates, item.edits, _ = item_files(item.title, item.body)
    doc.groups = [g for g in doc.groups if g.items]
    return doc
