"""What every plan dialect is read into: groups of items, each with its own id, status,
dependencies, files and the place it came from. Readers fill it; `build` makes the bundle.

The readers keep the dialect's own words (ids like `T012`, `5.2`, `skyhook-gld.1`); the
builder sanitises them into bundle ids, so two dialects never differ in how ids are made.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

#: statuses an item is not run for, with the reason shown as `skip`
SKIPPED = frozenset({"done", "cancelled", "deferred"})

_STATUS_WORDS = {
    "done": "done",
    "complete": "done",
    "completed": "done",
    "closed": "done",
    "finished": "done",
    "resolved": "done",
    "merged": "done",
    "cancelled": "cancelled",
    "canceled": "cancelled",
    "wontfix": "cancelled",
    "tombstone": "cancelled",
    "deferred": "deferred",
    "blocked": "blocked",
    "in-progress": "in-progress",
    "in_progress": "in-progress",
    "in progress": "in-progress",
    "inprogress": "in-progress",
    "doing": "in-progress",
    "active": "in-progress",
    "review": "review",
    "for_review": "review",
    "in review": "review",
    "pending": None,
    "open": None,
    "todo": None,
    "to do": None,
    "planned": None,
    "draft": None,
    "approved": None,
    "ready": None,
    "not started": None,
    "backlog": None,
}


def status_of(word: object) -> str | None:
    """A dialect's status word as one of done/cancelled/deferred/blocked/in-progress/review,
    or None (still to do)."""
    if not isinstance(word, str):
        return None
    key = word.strip().lower()
    return _STATUS_WORDS.get(key, _STATUS_WORDS.get(key.replace("-", " ")))


@dataclass
class Item:
    """One unit of work the plan names: a future step."""

    key: str  # the dialect's own id (T012, 1.2, 5.3, BACK-12), unique within the plan
    title: str
    where: str  # `tasks.md:35` or `tasks.json tasks[3]`: for x-source and --explain
    body: list[str] = field(default_factory=list)
    status: str | None = None
    depends: list[str] = field(default_factory=list)  # keys of items or groups
    parallel: bool = False  # `[P]`: no edge to its siblings
    creates: list[str] = field(default_factory=list)
    edits: list[str] = field(default_factory=list)
    scope: list[str] = field(default_factory=list)
    validation: str | None = None  # a command the plan gives to check the item
    criteria: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    sync: dict[str, Any] | None = None  # where `--sync-plan` ticks it
    rule: str = ""


@dataclass
class Group:
    """A phase, story, epic, parent task: a future workstream."""

    key: str
    title: str
    where: str
    items: list[Item] = field(default_factory=list)
    depends: list[str] | None = None  # None: after the group before it (when the dialect chains)
    description: str | None = None
    criteria: list[str] = field(default_factory=list)
    priority: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    rule: str = ""


@dataclass
class PlanDoc:
    """A plan as read by one dialect."""

    title: str | None
    groups: list[Group] = field(default_factory=list)
    chain_items: bool = False  # items without explicit dependencies follow the one before
    chain_groups: bool = False  # groups without explicit dependencies follow the one before
    warnings: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    context: list[str] = field(default_factory=list)  # told to every step: where the design is


_FENCE = re.compile(r"^\s*(```|~~~)")


def outside_fences(text: str) -> Iterator[tuple[int, str]]:
    """(line number, line) of the lines outside fenced code: templates quoted in a plan are
    not its items."""
    fence: str | None = None
    for number, line in enumerate(text.split("\n"), start=1):
        m = _FENCE.match(line)
        if m:
            fence = None if fence == m.group(1) else (fence or m.group(1))
            continue
        if fence is None:
            yield number, line


def sanitise(key: str) -> str:
    """A dialect id as a bundle id: `T012` stays, `Task 3/a` becomes `Task-3-a`."""
    out = re.sub(r"[^A-Za-z0-9_.\-]+", "-", key.strip()).strip("-.")
    out = re.sub(r"^[^A-Za-z0-9]+", "", out)
    return out[:100] or "item"


_FRONT = re.compile(r"\A---[ \t]*\n(?P<yaml>.*?)\n(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.S)


def front_matter(text: str) -> tuple[dict[str, Any] | None, int]:
    """The YAML front matter as a mapping (None when there is none or it is not a mapping),
    and the number of lines it takes."""
    import yaml

    m = _FRONT.match(text.replace("\r\n", "\n"))
    if not m:
        return None, 0
    try:
        data = yaml.safe_load(m.group("yaml"))
    except yaml.YAMLError:
        return None, 0
    lines = m.group(0).count("\n") + (0 if m.group(0).endswith("\n") else 1)
    return (data if isinstance(data, dict) else None), lines


def as_list(value: object) -> list[str]:
    """A YAML/JSON value that should be a list of names: scalars and None tolerated."""
    if value is None or value == "":
        return []
    if isinstance(value, list | tuple):
        return [str(v) for v in value if v is not None and str(v).strip()]
    if isinstance(value, str):
        return [v.strip() for v in re.split(r"[,\s]+", value) if v.strip()]
    return [str(value)]


def merge_docs(docs: list[PlanDoc], title: str | None) -> PlanDoc:
    """One plan from one-task-per-file plans: groups with the same key are one group."""
    out = PlanDoc(title)
    groups: dict[str, Group] = {}
    for doc in docs:
        out.warnings += doc.warnings
        for group in doc.groups:
            if group.key in groups:
                groups[group.key].items += group.items
            else:
                groups[group.key] = group
                out.groups.append(group)
    return out


def sections(body: str, offset: int) -> list[tuple[str, int, list[str]]]:
    """(title, line, lines) of each `## Title` section of a markdown body that starts at line
    `offset + 1`, outside fences; the text before the first heading has the title ''."""
    out: list[tuple[str, int, list[str]]] = [("", offset + 1, [])]
    for number, line in outside_fences(body):
        m = re.match(r"^#{1,3}\s+(.*?)\s*#*\s*$", line)
        if m:
            out.append((m.group(1), offset + number, []))
        else:
            out[-1][2].append(line)
    return out
