"""Numbered checklists (`- [x] 1.2 Title`), the shape of Kiro and OpenSpec `tasks.md`:
the first number is the group, the rest the item; text under an item is its instruction."""

from __future__ import annotations

import re

from uet_doit.plans.dialects.checklist import Entry, body_text, checkbox_sync, entries
from uet_doit.plans.dialects.files import item_files, paths_of
from uet_doit.plans.dialects.model import Group, Item, PlanDoc

NUMBERED = re.compile(r"^(?P<num>\d+(?:\.\d+)*)[.)]?\s+(?P<title>\S.*)$")
_HEADING_NUM = re.compile(r"^(?P<num>\d+)[.)]?\s+(?P<title>\S.*)$")
_FIELD = re.compile(r"^\s*[-*]?\s*_(?P<name>[A-Za-z ]+):\s*(?P<value>.*?)_?\s*$")
_DEPENDS = re.compile(r"(?i)^\s*[-*]?\s*_?(depends on|dependencies|after|blocked by)\s*:?\s*(.*)$")


def count(text: str) -> int:
    """How many checkbox items carry a number like `1.` or `2.3`."""
    return sum(1 for e in entries(text) if e.kind == "check" and NUMBERED.match(e.text))


def read_numbered(text: str, source: str, rule: str, headings: bool) -> PlanDoc:
    """Groups from `## N. Title` headings (`headings`) or top-level `- [ ] N. Title` items."""
    found = entries(text)
    title = next((e.text for e in found if e.kind == "heading" and e.level == 1), None)
    doc = PlanDoc(title, chain_items=True, chain_groups=True)
    groups: dict[str, Group] = {}
    current: Group | None = None
    last: Item | None = None
    for e in found:
        if e.kind == "heading":
            m = _HEADING_NUM.match(e.text)
            if headings and m:
                current = _group(groups, doc, m.group("num"), m.group("title"), e, source, rule)
            last = None
            continue
        m = NUMBERED.match(e.text)
        if (
            last is not None
            and (not m or e.indent > last.metadata.get("_indent", 0))
            and not (m and "." in m.group("num"))
        ):
            last.body.append(e.raw.strip())
            last.body += body_text(e.body)
            continue
        if not m:
            continue
        num = m.group("num")
        top = num.split(".")[0]
        if "." not in num and not headings:
            current = _group(groups, doc, top, m.group("title"), e, source, rule)
            current.metadata["status"] = e.status
            current.metadata["source_item"] = checkbox_sync(e)  # ticked when its items are
            last = _item(num, m.group("title"), e, source, rule)
            last.metadata["_whole_group"] = True
            current.items.append(last)
            continue
        group = groups.get(top) or current
        if group is None:
            group = _group(groups, doc, top, f"Tasks {top}", e, source, rule)
        if group.items and group.items[0].metadata.get("_whole_group"):
            group.items.pop(0)  # `1. Title` has sub-items: it is their group, not a step
        last = _item(num, m.group("title"), e, source, rule)
        group.items.append(last)
    for group in doc.groups:
        for item in group.items:
            item.metadata.pop("_indent", None)
            item.metadata.pop("_whole_group", None)
            _fields(item)
        if group.metadata.get("status") is None:
            group.metadata.pop("status", None)
    doc.groups = [g for g in doc.groups if g.items]
    return doc


def _group(
    groups: dict[str, Group], doc: PlanDoc, num: str, title: str, e: Entry, source: str, rule: str
) -> Group:
    group = Group(f"task-{num}", f"{num}. {title}", f"{source}:{e.line}", rule=rule)
    groups[num] = group
    doc.groups.append(group)
    return group


def _item(num: str, title: str, e: Entry, source: str, rule: str) -> Item:
    item = Item(num, title.strip(), f"{source}:{e.line}", rule=rule)
    item.status = e.status
    item.body = body_text(e.body)
    item.metadata["_indent"] = e.indent
    if e.star:
        item.metadata["optional"] = True
    item.sync = checkbox_sync(e)
    return item


def _fields(item: Item) -> None:
    """`_Requirements: 1.2, 3.1_`, `_Leverage: src/a.ts_`, `Depends on: 1.2` lines; the
    files the item names."""
    for line in item.body:
        m = _FIELD.match(line)
        if m:
            name, value = m.group("name").strip().lower(), m.group("value").strip().rstrip("_")
            if name.startswith("requirement"):
                item.metadata["requirements"] = [v.strip() for v in value.split(",") if v.strip()]
            elif name in ("leverage", "files"):
                item.edits += [p for p in paths_of(value) if p not in item.edits]
        d = _DEPENDS.match(line)
        if d:
            item.depends += list(re.findall(r"\b\d+(?:\.\d+)+\b|\b\d+\b", d.group(2)))
    creates, edits, _ = item_files(item.title, item.body)
    item.creates = [p for p in creates if p not in item.edits]
    item.edits += [p for p in edits if p not in item.edits]
