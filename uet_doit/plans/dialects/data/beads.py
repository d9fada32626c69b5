"""Beads issue ledger (`.beads/issues.jsonl`): one issue a line, `dependencies` edges of type
`blocks` (the issue waits for `depends_on_id`) and `parent-child` (an epic and its issues).

An epic (or any issue with children) is a workstream, its children the steps; issues without
a parent are steps of one `issues` workstream. Only `blocks` edges order work: `related` and
`discovered-from` are links. `closed` issues are kept with `skip: done`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from uet_doit.errors import UsageError
from uet_doit.plans.dialects.files import item_files
from uet_doit.plans.dialects.model import Group, Item, PlanDoc, status_of

NAME = "beads"
TITLE = "Beads issues.jsonl"
EXAMPLE = (
    '{"id": "bd-a1.2", "title": "Add the API", "status": "open", "dependencies":\n'
    '  [{"depends_on_id": "bd-a1.1", "type": "blocks"}]}'
)

_ORDERING = frozenset({"blocks", "waits-for", "conditional-blocks"})
_PRIORITY = {0: "critical", 1: "high", 2: "medium", 3: "low", 4: "low"}


def _lines(text: str) -> list[tuple[int, dict[str, Any]]]:
    out = []
    for number, line in enumerate(text.split("\n"), start=1):
        if line.strip():
            value = json.loads(line)
            if isinstance(value, dict):
                out.append((number, value))
    return out


def detect(path: Path, text: str) -> str | None:
    first = next((ln for ln in text.split("\n") if ln.strip()), "")
    if not first.lstrip().startswith("{"):
        return None
    try:
        rows = _lines(text)
    except ValueError:
        # the ledger's own place: read it as Beads, so the bad line is named
        return (
            "the file .beads/issues.jsonl"
            if path.as_posix().endswith(".beads/issues.jsonl")
            else None
        )
    issues = rows and all("id" in r and "title" in r and "status" in r for _, r in rows)
    if issues and (".beads/" in path.as_posix() or any("issue_type" in r for _, r in rows)):
        return f"JSON lines of {len(rows)} issues with id, title, status, issue_type"
    return None


def read(text: str, source: str) -> PlanDoc:
    rows = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError as exc:
            raise UsageError(
                f"{source}:{number}: this line is not JSON ({exc.args[0]})",
                "fix or remove that line (`bd` rewrites the file from its database: `bd export`)",
            ) from exc
        if isinstance(value, dict):
            rows.append((number, value))
    rows = [(n, r) for n, r in rows if r.get("status") != "tombstone"]  # deleted issues
    ids = {str(r["id"]) for _, r in rows}
    parent: dict[str, str] = {}
    for _, r in rows:
        for dep in r.get("dependencies") or []:
            if isinstance(dep, dict) and dep.get("type") == "parent-child":
                parent[str(r["id"])] = str(dep.get("depends_on_id"))
        rid = str(r["id"])
        if rid not in parent and "." in rid and rid.rsplit(".", 1)[0] in ids:
            parent[rid] = rid.rsplit(".", 1)[0]
    parents = {p for p in parent.values() if p in ids}
    doc = PlanDoc(None)
    groups: dict[str, Group] = {}
    loose = Group("issues", "Issues", source, rule="Beads issues without an epic")
    for number, r in rows:
        rid = str(r["id"])
        where = f"{source}:{number}"
        if rid in parents:
            group = Group(rid, str(r.get("title") or rid), where, rule="Beads epic")
            group.description = str(r.get("description") or "") or None
            group.priority = _PRIORITY.get(r.get("priority"))  # type: ignore[arg-type]
            group.depends = _blocks(r) or None
            group.metadata["status"] = r.get("status")
            groups[rid] = group
            doc.groups.append(group)
    for number, r in rows:
        rid = str(r["id"])
        if rid in parents:
            continue
        item = _item(r, f"{source}:{number}", number)
        home = groups.get(parent.get(rid, ""))
        (home or loose).items.append(item)
    if loose.items:
        loose.depends = []
        doc.groups.append(loose)
    return doc


def _blocks(r: dict[str, Any]) -> list[str]:
    return [
        str(d["depends_on_id"])
        for d in r.get("dependencies") or []
        if isinstance(d, dict) and d.get("type", "blocks") in _ORDERING and d.get("depends_on_id")
    ]


def _item(r: dict[str, Any], where: str, number: int) -> Item:
    rid = str(r["id"])
    item = Item(rid, str(r.get("title") or rid), where, rule="Beads issue")
    for key in ("description", "design", "notes"):
        if r.get(key):
            item.body += ["", *str(r[key]).split("\n")]
    item.body = item.body[1:]
    if r.get("acceptance_criteria"):
        lines = [
            ln.strip().lstrip("-*").strip() for ln in str(r["acceptance_criteria"]).split("\n")
        ]
        item.criteria = [ln for ln in lines if ln]
    item.status = status_of(r.get("status"))
    item.depends = _blocks(r)
    item.creates, item.edits, _ = item_files(item.title, item.body)
    if r.get("issue_type"):
        item.metadata["issue_type"] = r["issue_type"]
    if r.get("priority") is not None:
        item.metadata["priority"] = r["priority"]
    if r.get("close_reason"):
        item.metadata["close_reason"] = r["close_reason"]
    item.sync = {"kind": "jsonl", "line": number, "id": r["id"], "done": "closed"}
    return item
