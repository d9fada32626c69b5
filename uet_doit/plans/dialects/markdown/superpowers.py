r"""superpowers plans (`docs/plans/YYYY-MM-DD-<feature>.md`, the writing-plans skill):
`### Task N: Title` sections with a `**Files:**` list (`- Create: \`path\``, `- Modify:
\`path:12-40\``, `- Test: \`path\``) and bite-sized steps (`**Step 1: ...**`, lately
`- [ ] **Step 1: ...**`), `Run: \`pytest ...\`` / `Expected: PASS`. Tasks run in order; a task
whose steps are all ticked is done."""

from __future__ import annotations

import re
from pathlib import Path

from uet_doit.plans.dialects.checklist import Entry, entries
from uet_doit.plans.dialects.files import paths_of, verify_command
from uet_doit.plans.dialects.model import Group, Item, PlanDoc

NAME = "superpowers"
TITLE = "superpowers implementation plan"
EXAMPLE = "### Task 1: Parser\n**Files:**\n- Create: `src/parse.py`\n- Test: `tests/test_parse.py`"

_TASK = re.compile(r"(?i)^task\s+(?P<num>\d+(?:\.\d+)?)\s*[:.\-\u2013\u2014]\s*(?P<title>.+)$")
_GROUP = re.compile(r"(?i)^(phase|chunk|part|milestone)\s+(?P<num>\d+)\b")
_FILE = re.compile(
    r"(?i)^\s*[-*]\s+(?P<verb>create|modify|test|delete|update|edit)s?\s*:\s*(?P<rest>.+)$"
)
_RUN = re.compile(r"(?i)^\s*(?:[-*]\s+)?run:\s*(?P<rest>.*)$")


def detect(path: Path, text: str) -> str | None:
    tasks = len(re.findall(r"(?im)^#{2,4}\s+task\s+\d+\s*[:.\-]", text))
    if "superpowers:" in text and tasks:
        return f"{tasks} `### Task N:` sections and a superpowers skill line"
    if tasks and re.search(r"(?m)^\*\*Files:\*\*", text):
        return f"{tasks} `### Task N:` sections with `**Files:**` lists"
    return None


def read(text: str, source: str) -> PlanDoc:
    found = entries(text)
    raw = text.replace("\r\n", "\n").split("\n")
    title = next((e.text for e in found if e.kind == "heading" and e.level == 1), None)
    doc = PlanDoc((title and re.sub(r"(?i)\s*implementation plan$", "", title)) or title)
    doc.chain_items = doc.chain_groups = True
    group: Group | None = None
    heads = [e for e in found if e.kind == "heading"]
    for n, e in enumerate(heads):
        if m := _GROUP.match(e.text):
            group = Group(f"{m.group(1).lower()}-{m.group('num')}", e.text, f"{source}:{e.line}")
            group.rule = "superpowers plan section"
            doc.groups.append(group)
            continue
        m = _TASK.match(e.text)
        if not m:
            continue
        if group is None:
            group = Group("plan", title or "Plan", f"{source}:{e.line}", rule="superpowers plan")
            doc.groups.append(group)
        end = next(
            (h.line for h in heads[n + 1 :] if _TASK.match(h.text) or h.level <= e.level),
            len(raw) + 1,
        )
        item = Item(f"task-{m.group('num')}", m.group("title"), f"{source}:{e.line}")
        item.rule = "superpowers `### Task N:` section"
        item.body = raw[e.line : end - 1]  # the section as written, code included
        steps = [x for x in found if x.kind == "check" and e.line < x.line < end]
        _finish(item, steps)
        group.items.append(item)
    doc.groups = [g for g in doc.groups if g.items]
    return doc


def _run_commands(lines: list[str]) -> list[str]:
    r"""`Run: \`cmd\`` lines, and `Run:` lines followed by a fenced command."""
    out: list[str] = []
    for i, line in enumerate(lines):
        m = _RUN.match(line)
        if not m:
            continue
        rest = m.group("rest").strip()
        if rest:
            out.append(rest)
            continue
        after = [ln for ln in lines[i + 1 : i + 4] if ln.strip()]
        if len(after) >= 2 and after[0].lstrip().startswith("```"):
            out.append(f"`{after[1].strip()}`")
    return out


def _finish(item: Item, steps: list[Entry]) -> None:
    """Files from the `**Files:**` list, the test command, done when every step is ticked."""
    for line in item.body:
        m = _FILE.match(line)
        if not m:
            continue
        paths = paths_of(m.group("rest"))
        verb = m.group("verb").lower()
        (item.creates if verb in ("create", "test") else item.edits).extend(paths)
    item.creates = [p for p in dict.fromkeys(item.creates) if p not in item.edits]
    item.edits = list(dict.fromkeys(item.edits))
    commands = [c for r in _run_commands(item.body) if (c := verify_command(r))]
    item.validation = commands[-1] if commands else None
    while item.body and not item.body[-1].strip():
        item.body.pop()
    if steps:
        marks = [s.status for s in steps]
        if all(m == "done" for m in marks):
            item.status = "done"
        elif any(m == "done" for m in marks):
            item.status = "in-progress"
        lines = [s.line for s in steps]
        item.sync = {"kind": "checkboxes", "lines": lines, "texts": [s.raw for s in steps]}
