"""Backlog.md task files (`backlog/tasks/<id> - <title>.md`): YAML front matter (`id`,
`status`, `dependencies`, `modified_files`, `parent_task_id`, `priority`), a body whose
parts sit between `<!-- SECTION:DESCRIPTION:BEGIN -->`-style markers and acceptance
criteria as `- [ ] #1 ...` between `<!-- AC:BEGIN -->` and `<!-- AC:END -->`.

One file is one step; give the `backlog/tasks` folder to keep the edges between tasks.
Ids match case-blind, and by number when the prefix differs (`task-12` is `BACK-12`).
"""

from __future__ import annotations

import re
from pathlib import Path

from uet_doit.plans.dialects.files import item_files, verify_command
from uet_doit.plans.dialects.model import (
    Group,
    Item,
    PlanDoc,
    as_list,
    front_matter,
    merge_docs,
    status_of,
)

NAME = "backlog"
TITLE = "Backlog.md task file"
EXAMPLE = (
    "---\nid: task-12\nstatus: To Do\ndependencies: [task-11]\nmodified_files: [src/cli.ts]\n---"
)
PER_FILE = True

_ID = re.compile(r"^[A-Za-z][\w]*-\d+(?:\.\d+)*$")
_MARKED = re.compile(
    r"<!--\s*(?P<name>[A-Z:_]+?):?BEGIN\s*-->(?P<text>.*?)<!--\s*[A-Z:_]*?END\s*-->", re.S
)
_CRITERION = re.compile(r"^\s*-\s+\[(?P<mark>[ xX])\]\s+(?:#\d+\s+)?(?P<text>.+)$")
_PRIORITY = {"high": "high", "medium": "medium", "low": "low"}


def detect(path: Path, text: str) -> str | None:
    meta, _ = front_matter(text)
    if not meta or not _ID.match(str(meta.get("id", ""))):
        return None
    if "status" in meta and "title" in meta:
        where = " under backlog/" if "backlog/" in path.as_posix() else ""
        return f"front matter with a task id ({meta['id']}), title and status{where}"
    return None


def _key(value: object) -> str:
    return str(value).strip()


def read(text: str, source: str) -> PlanDoc:
    meta, lines = front_matter(text)
    meta = meta or {}
    body = "\n".join(text.replace("\r\n", "\n").split("\n")[lines:])
    key = _key(meta.get("id", source))
    item = Item(key, str(meta.get("title") or key), f"{source}:1", rule="Backlog.md task")
    parts = {
        m.group("name").rstrip(":").upper(): m.group("text").strip() for m in _MARKED.finditer(body)
    }
    description = parts.get("SECTION:DESCRIPTION") or parts.get("DESCRIPTION")
    if description is None:  # older files: the body without markers
        description = re.sub(r"<!--.*?-->", "", body, flags=re.S).strip()
    item.body = description.split("\n") if description else []
    plan = parts.get("SECTION:PLAN")
    if plan:
        item.body += ["", "Implementation plan:", *plan.split("\n")]
    for name in ("AC", "DOD"):
        for line in (parts.get(name) or "").split("\n"):
            m = _CRITERION.match(line)
            if m:
                item.criteria.append(m.group("text").strip())
    item.status = status_of(meta.get("status"))
    item.depends = [_key(d) for d in as_list(meta.get("dependencies"))]
    item.scope = as_list(meta.get("modified_files"))
    item.creates, item.edits, _ = item_files(item.title, item.body)
    item.validation = verify_command("\n".join(item.criteria))
    for field in ("labels", "assignee", "priority", "parent_task_id"):
        if meta.get(field):
            item.metadata[field] = meta[field]
    item.sync = {"kind": "frontmatter", "field": "status", "done": "Done"}
    group = Group("backlog", "Backlog", f"{source}:1", [item], depends=[], rule="Backlog.md tasks")
    return PlanDoc(str(meta.get("title") or key), [group])


def merge(docs: list[PlanDoc]) -> PlanDoc:
    """All task files of a folder: their dependencies resolved by id, else by number."""
    doc = merge_docs(docs, "Backlog")
    items = [i for g in doc.groups for i in g.items]
    by_id = {i.key.lower(): i.key for i in items}
    by_number = {i.key.split("-", 1)[-1]: i.key for i in items}
    for item in items:
        item.depends = [
            by_id.get(d.lower()) or by_number.get(d.split("-", 1)[-1], d) for d in item.depends
        ]
    return doc
