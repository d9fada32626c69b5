"""The lines of a markdown plan that the checklist dialects are made of: headings, checkbox
items (with their mark and indent), and the text under each, outside fenced code."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from uet_doit.plans.dialects.files import item_files
from uet_doit.plans.dialects.model import Group, Item, PlanDoc, outside_fences
from uet_doit.plans.plan_markdown import priority_of, slug

_HEADING = re.compile(r"^(?P<hashes>#{1,6})\s+(?P<title>.*?)\s*#*\s*$")
_CHECK = re.compile(
    r"^(?P<indent>\s*)(?:[-*+]|\d+[.)])\s+\[(?P<mark>[ xX~\-/>!?])\](?P<star>\*?)\s*(?P<text>.*)$"
)
_BULLET = re.compile(r"^(?P<indent>\s*)(?P<bullet>[-*+]|\d+[.)])\s+(?P<text>.*)$")
#: checkbox marks: `[x]` done, `[-]`/`[~]`/`[/]` started, `[>]` deferred, `[!]` blocked
MARKS: dict[str, str | None] = {
    "x": "done",
    "X": "done",
    "-": "in-progress",
    "~": "in-progress",
    "/": "in-progress",
}
MARKS |= {">": "deferred", "!": "blocked", "?": None, " ": None}


@dataclass
class Entry:
    """A heading, a checkbox item or a plain bullet, with the lines under it."""

    kind: str  # heading | check | bullet
    line: int
    text: str
    indent: int = 0
    level: int = 0  # heading level
    mark: str = " "
    star: bool = False  # Kiro `- [ ]*`: optional
    raw: str = ""
    body: list[tuple[int, str]] = field(default_factory=list)  # (line, text) under it

    @property
    def status(self) -> str | None:
        return MARKS.get(self.mark)


def entries(text: str, bullets: bool = False) -> list[Entry]:
    """Headings and checkbox items (and plain bullets when `bullets`) in order; every other
    line goes into the body of the entry before it."""
    out: list[Entry] = []
    for number, line in outside_fences(text.replace("\r\n", "\n")):
        if m := _HEADING.match(line):
            out.append(Entry("heading", number, m.group("title"), level=len(m.group("hashes"))))
        elif m := _CHECK.match(line):
            indent = len(m.group("indent").replace("\t", "    "))
            entry = Entry("check", number, m.group("text").strip(), indent, mark=m.group("mark"))
            entry.star, entry.raw = bool(m.group("star")), line
            out.append(entry)
        elif bullets and (m := _BULLET.match(line)):
            indent = len(m.group("indent").replace("\t", "    "))
            out.append(Entry("bullet", number, m.group("text").strip(), indent, raw=line))
        elif out:
            out[-1].body.append((number, line))
    return out


def body_text(lines: list[tuple[int, str]]) -> list[str]:
    """The body lines without the blank ones at either end, dedented."""
    texts = [t for _, t in lines]
    while texts and not texts[0].strip():
        texts.pop(0)
    while texts and not texts[-1].strip():
        texts.pop()
    cut = min((len(t) - len(t.lstrip()) for t in texts if t.strip()), default=0)
    return [t[cut:] for t in texts]


def checkbox_sync(entry: Entry) -> dict[str, object]:
    """Where `--sync-plan` ticks a checkbox item: its line and the text it had."""
    return {"kind": "checkbox", "line": entry.line, "text": entry.raw}


_STRUCK = re.compile(r"^~~(?P<text>.+)~~$")
_DONE_WORD = re.compile(
    r"(?i)^(?:\u2705|\u2714\ufe0f?|DONE\b:?|COMPLETED?\b:?)\s*|\s*(?:\u2705|\(done\)|- done)$"
)


def loose_status(entry: Entry) -> tuple[str, str | None]:
    """(title, status) of an item whose plan marks it done in words: `[x]`, `✅`, `~~...~~`,
    `DONE:`, `(done)`."""
    text = entry.text.strip()
    status = entry.status if entry.kind == "check" else None
    if m := _STRUCK.match(text):
        return m.group("text").strip(), "done"
    cleaned = _DONE_WORD.sub("", text).strip()
    if cleaned != text:
        return cleaned, "done"
    return text, status


def read_loose(text: str, source: str, rule: str) -> PlanDoc:
    """A prioritised checklist (Ralph's IMPLEMENTATION_PLAN.md, an agent's TODO.md): the
    headings over items are groups, checkbox items (else top-level bullets) are items, in
    order; nested lines are their instruction."""
    found = entries(text, bullets=True)
    checks = any(e.kind == "check" for e in found)
    title = next((e.text for e in found if e.kind == "heading" and e.level == 1), None)
    doc = PlanDoc(title, chain_items=True, chain_groups=True)
    group: Group | None = None
    last: Item | None = None
    base = 0
    used: set[str] = set()
    for e in found:
        if e.kind == "heading":
            if e.level > 1 or group is None:
                group = Group(
                    f"section-{slug(e.text, 40)}", e.text, f"{source}:{e.line}", rule=rule
                )
                group.priority = priority_of(e.text) or _priority_word(e.text)
                doc.groups.append(group)
            last = None
            continue
        wanted = e.kind == "check" if checks else e.kind == "bullet"
        if last is not None and (e.indent > base or not wanted):
            last.body.append(e.raw.strip() or e.text)
            last.body += body_text(e.body)
            continue
        if not wanted:
            continue
        if group is None:
            group = Group("tasks", title or "Tasks", f"{source}:{e.line}", rule=rule)
            doc.groups.append(group)
        name, status = loose_status(e)
        key = slug(name, 48)
        n = 2
        while key in used:
            key, n = f"{slug(name, 44)}-{n}", n + 1
        used.add(key)
        last = Item(key, name, f"{source}:{e.line}", rule=rule)
        last.status, base = status, e.indent
        last.body = body_text(e.body)
        if e.kind == "check":
            last.sync = checkbox_sync(e)
        group.items.append(last)
    for g in doc.groups:
        for item in g.items:
            item.creates, item.edits, _ = item_files(item.title, item.body)
    doc.groups = [g for g in doc.groups if g.items]
    return doc


def _priority_word(title: str) -> str | None:
    m = re.search(r"(?i)\b(critical|high|medium|low)\b(?:[\s-]+priority)?", title)
    return m.group(1).lower() if m and "priority" in title.lower() else None
