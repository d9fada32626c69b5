"""BMAD story files (`docs/stories/1.2.story.md`, `_bmad-output/.../stories/`): `# Story 1.2:
Title`, `## Status`, `## Story`, `## Acceptance Criteria` (numbered), `## Tasks / Subtasks`
(`- [ ] Task 1 (AC: 1, 3)` with nested subtasks), `## Dev Notes`. A story is a workstream,
its tasks the steps in order; `Status: Done` marks them all done."""

from __future__ import annotations

import re
from pathlib import Path

from uet_doit.plans.dialects.checklist import body_text, checkbox_sync, entries
from uet_doit.plans.dialects.files import item_files
from uet_doit.plans.dialects.model import Group, Item, PlanDoc, status_of

NAME = "bmad"
TITLE = "BMAD story"
EXAMPLE = "# Story 1.2: Login\n## Tasks / Subtasks\n- [ ] Task 1 (AC: 1): Add src/auth/login.ts"

_STORY = re.compile(r"(?i)^story\s+(?P<num>[\w.\-]+)\s*[:\-\u2013\u2014]\s*(?P<title>.+)$")
_TASK_NUM = re.compile(r"(?i)^task\s+(?P<num>\d+(?:\.\d+)?)\b\s*")
_AC = re.compile(r"\(AC:?\s*#?(?P<ac>[\d,\s#]+)\)")


def detect(path: Path, text: str) -> str | None:
    h1 = re.search(r"(?m)^#\s+(.+)$", text)
    story = bool(h1 and _STORY.match(h1.group(1).strip()))
    tasks = re.search(r"(?im)^##\s+tasks\s*/\s*subtasks", text)
    if story and (tasks or re.search(r"(?im)^(##\s+status|status:\s*\S)", text)):
        return "a `# Story N.M:` file with Status and Tasks / Subtasks sections"
    return None


def _numbered(lines: list[tuple[int, str]]) -> list[str]:
    item = re.compile(r"^\s*(\d+[.)]|[-*])\s+")
    return [item.sub("", t).strip() for _, t in lines if item.match(t)]


def read(text: str, source: str) -> PlanDoc:
    found = entries(text)
    doc = PlanDoc(None, chain_items=True)
    h1 = next((e for e in found if e.kind == "heading" and e.level == 1), None)
    m = _STORY.match(h1.text) if h1 else None
    num = m.group("num") if m else Path(source).stem
    group = Group(f"story-{num}", h1.text if h1 else num, f"{source}:{h1.line if h1 else 1}")
    group.rule = "BMAD story"
    doc.title = group.title
    section = ""
    line = re.search(r"(?im)^status:\s*(?P<word>\S.*?)\s*$", text)  # BMAD v6: `Status: done`
    status = status_of(line.group("word")) if line else None
    if line:
        group.metadata["status"] = line.group("word")
    last: Item | None = None
    for e in found:
        if e.kind == "heading":
            section = e.text.strip().lower()
            if section == "status":
                words = [t.strip() for _, t in e.body if t.strip()]
                status = status_of(words[0]) if words else None
                group.metadata["status"] = words[0] if words else None
            elif section == "story":
                group.description = " ".join(t.strip() for _, t in e.body if t.strip()) or None
            elif section.startswith("acceptance criteria"):
                group.criteria = _numbered(e.body)
            last = None
            continue
        if not section.startswith("tasks"):
            continue
        if e.indent == 0:
            name = e.text
            tm = _TASK_NUM.match(name)
            key = f"{num}-task-{tm.group('num')}" if tm else f"{num}-task-{len(group.items) + 1}"
            last = Item(key, name, f"{source}:{e.line}", rule="BMAD task")
            last.status, last.sync = e.status, checkbox_sync(e)
            ac = _AC.search(name)
            if ac:
                last.metadata["acceptance_criteria"] = re.findall(r"\d+", ac.group("ac"))
            last.body = body_text(e.body)
            group.items.append(last)
        elif last is not None:
            last.body += [e.raw.strip(), *body_text(e.body)]
    for item in group.items:
        item.creates, item.edits, _ = item_files(item.title, item.body)
        if status == "done":
            item.status = "done"
    doc.groups.append(group)
    return doc
