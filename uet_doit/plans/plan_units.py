"""What a plan is made of: its units of work, each with tasks, deliverables, criteria, notes.

A unit is a heading of a known shape (Week 3, Phase 03.5, PH-04, M1, WS-01, Sprint 2; any
level: the shallowest level holding one wins), a heading matching `--unit-pattern`, or, when
there is none, the plan's tasks section(s), its top-level numbered items, or its sections.
Every item keeps its line and the rule that made it, for `x-source` and `uet convert
--explain`; what is left out is recorded with the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from markdown_it.tree import SyntaxTreeNode

from uet_doit.plans.plan_markdown import (
    EDIT,
    MARKS,
    Deliverable,
    Section,
    Task,
    clean_title,
    deliverable_from,
    files_line,
    first_inline,
    inline,
    is_checkbox,
    line_of,
    list_label,
    paths_in,
    paths_in_text,
    priority_of,
    role_of,
    snippet_path,
    task_from,
    words_of,
)
from uet_doit.plans.plan_text import TASK_TITLE, title_kind

_NUM_PARTS = re.compile(r"\d+")
_TASK_COLUMN = re.compile(r"(?i)\b(tasks?|steps?|actions?|work items?|to-?dos?|activit(y|ies))\b")
_FILE_COLUMN = re.compile(r"(?i)\b(files?|paths?|deliverables?|outputs?|artifacts?)\b")


@dataclass
class Unit:
    """One future workstream."""

    name: str
    title: str
    line: int
    rule: str
    kind: str | None = None
    num: str | None = None
    priority: str | None = None
    description: str | None = None
    marks: list[str] = field(default_factory=list)
    tasks: list[Task] = field(default_factory=list)
    deliverables: list[Deliverable] = field(default_factory=list)
    plain: list[Task] = field(default_factory=list)  # bullets: steps only when nothing else is
    criteria: list[str] = field(default_factory=list)
    reads: list[str] = field(default_factory=list)
    notes: list[tuple[int, str]] = field(default_factory=list)  # (line, title) of Risks, ...
    text: str = ""  # its own words, for "depends on PH-02" phrases
    raw: str = ""

    @property
    def key(self) -> tuple[str, str] | None:
        return ref_key(self.kind, self.num) if self.kind and self.num else None


@dataclass
class Reading:
    """What was recognised, and what was left out (line, text, reason)."""

    units: list[Unit]
    mode: str
    skipped: list[tuple[int, str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[tuple[int, str]] = field(default_factory=list)  # plan-level Risks, Goals, ...
    headings: list[str] = field(default_factory=list)  # every heading, for "what was seen"
    items: int = 0  # list items outside code


def ref_key(kind: str, num: str) -> tuple[str, str]:
    """`Phase 03.5` and `phase 3.5` are one unit; `M2` and `Milestone 2` too."""
    kind = kind.lower()
    kind = {"milestone": "m", "workstream": "ws"}.get(kind, kind)
    return kind, ".".join(str(int(p)) for p in _NUM_PARTS.findall(num))


class UnitReader:
    """Reads the sections of one unit into tasks, deliverables, criteria and notes."""

    def __init__(self, unit: Unit, reading: Reading, forced: frozenset[int] = frozenset()) -> None:
        self.unit = unit
        self.reading = reading
        self.forced = forced  # lines of sections read as tasks whatever their title says

    def skip(self, line: int, text: str, reason: str) -> None:
        self.reading.skipped.append((line, text[:80], reason))

    def read(self, parts: list[tuple[Section, str | None, bool]]) -> None:
        """`parts`: (section, inherited role, is the unit's own heading) in document order."""
        i = 0
        while i < len(parts):
            section, inherited, own = parts[i]
            role = None if own else (role_of(section.title) or inherited)
            if section.line in self.forced:
                role = "tasks"
            if not own and TASK_TITLE.match(section.title) and inherited != "notes":
                i = self._single_step(parts, i, "task heading (Step N / Task N)")
                continue
            if role == "notes":
                self.skip(section.line, section.title, "a section that is not work (notes)")
                self.unit.notes.append((section.line, section.title))
            elif role is None and not own and not self._has_items(section):
                i = self._single_step(parts, i, "sub-heading")
                continue
            else:
                self._read_blocks(section, role, own, inherited is not None and role == inherited)
            i += 1

    @staticmethod
    def _has_items(section: Section) -> bool:
        for block in section.blocks:
            if block.type == "ordered_list":
                return True
            if block.type == "bullet_list" and any(is_checkbox(it) for it in block.children):
                return True
        return False

    def _single_step(self, parts: list[tuple[Section, str | None, bool]], i: int, rule: str) -> int:
        """A sub-heading that is one task: everything under it is its instruction."""
        head = parts[i][0]
        end = i + 1
        while end < len(parts) and parts[end][0].level > head.level:
            end += 1
        raw = "\n\n".join(
            [head.raw] + [f"{'#' * s.level} {s.title}\n{s.raw}" for s, _, _ in parts[i + 1 : end]]
        )
        name = clean_title(head.title)
        task = Task(name, [raw] if raw else [], [], words_of(name), None, head.line, rule)
        task.text = raw
        kind = title_kind(head.title)
        task.key = ref_key(kind[0], kind[1]) if kind else None
        for n, (section, _, _) in enumerate(parts[i:end]):
            listed = n > 0 and role_of(section.title) == "deliverables"  # `#### Deliverables`
            for index, block in enumerate(section.blocks):
                self._paths_into(task, section.blocks, index, block, listed)
        if EDIT.match(re.sub(r"^\w+\s*[\d\s\-\u2013]*[:.)]?\s*", "", name)):
            task.edits, task.creates = task.edits + task.creates, []  # `Step 20: Update docs`
        task.paths = list(dict.fromkeys([*task.creates, *task.edits]))
        self.unit.tasks.append(task)
        return end

    def _paths_into(
        self,
        task: Task,
        blocks: list[SyntaxTreeNode],
        index: int,
        block: SyntaxTreeNode,
        listed: bool,
    ) -> None:
        """The files a one-step sub-heading names: `Files:` lines, snippet comments and
        deliverables lists (`listed`: every list under it is one)."""
        if block.type == "paragraph" and block.children:
            for text_line in block.children[0].content.replace("**", "").split("\n"):
                found = files_line(text_line)
                if found:
                    task.creates += found[0]
                    task.edits += found[1]
        elif block.type == "fence" and (path := snippet_path(block.content)):
            task.creates.append(path)
        elif block.type in ("bullet_list", "ordered_list"):
            label = list_label(blocks, index)
            if (label and role_of(label) == "deliverables") or (listed and not label):
                for item in block.children:
                    d = deliverable_from(item, "deliverables list", labelled=True)
                    (task.edits if d.edit else task.creates).extend(d.paths)

    def _read_blocks(self, section: Section, role: str | None, own: bool, inherited: bool) -> None:
        label_text = (
            None if own or (role == "tasks" and section.title.lower() == "tasks") else section.title
        )
        for index, block in enumerate(section.blocks):
            if block.type == "paragraph" and block.children:
                self._paragraph(block, own, role)
            elif block.type == "fence":
                path = snippet_path(block.content)
                if path and role in (None, "deliverables", "tasks"):
                    d = Deliverable(f"`{path}` (code snippet)", [path], False, words_of(path))
                    d.line, d.rule = line_of(block, section.line), "snippet path comment"
                    self.unit.deliverables.append(d)
                elif role == "reads":
                    lines = block.content.split("\n")
                    self.unit.reads += [p for ln in lines for p in paths_in_text(ln.strip())]
            elif block.type == "table":
                self._table(block, role, label_text)
            elif block.type in ("bullet_list", "ordered_list"):
                label = list_label(section.blocks, index)
                list_role = (role_of(label) if label else None) or role
                if inherited and label and role_of(label) != role:
                    list_role = "skip"  # `Must Provide:` under a deliverables heading
                named = label if label and (role_of(label) or not label_text) else label_text
                self._list(block, list_role, named, label is not None)

    def _table(self, block: SyntaxTreeNode, role: str | None, section: str | None) -> None:
        """A table with a Task/Step column: a task per row; with only a File/Deliverable
        column: a deliverable per row. Other tables are left out."""
        rows = [node for node in block.walk() if node.type == "tr"]
        if not rows:
            return
        cells = [[c.children[0] if c.children else None for c in tr.children] for tr in rows]
        header = [inline(c, ticks=False).strip() if c else "" for c in cells[0]]
        task_col = next((i for i, h in enumerate(header) if _TASK_COLUMN.search(h)), None)
        file_cols = [i for i, h in enumerate(header) if _FILE_COLUMN.search(h)]
        where = f"table under {section!r}" if section else "table"
        if role in ("notes", "criteria", "reads") or (task_col is None and not file_cols):
            self.skip(line_of(block), " | ".join(header), f"{where}: no Task or File column")
            return
        for tr, row in zip(rows[1:], cells[1:], strict=False):
            texts = [inline(c).strip() if c else "" for c in row]
            plain = [inline(c, ticks=False).strip() if c else "" for c in row]
            wanted = file_cols or range(len(row))
            found = [row[i] for i in wanted if i < len(row)]
            paths = list(dict.fromkeys(p for c in found if c is not None for p in paths_in(c)))
            line = line_of(tr, line_of(block))
            if task_col is None or role == "deliverables":
                d = Deliverable(
                    " | ".join(texts), paths, bool(EDIT.match(plain[0])), words_of(" ".join(plain))
                )
                d.line, d.rule = line, f"row of a {where}"
                self.unit.deliverables.append(d)
                continue
            name = plain[task_col] if task_col < len(plain) else "Task"
            lines = [
                f"{h}: {t}"
                for h, t in zip(header, texts, strict=False)
                if t and h != header[task_col]
            ]
            task = Task(name or "Task", lines, paths, words_of(" ".join(plain)), section, line)
            task.rule, task.text = f"row of a {where}", " ".join(plain)
            self.unit.tasks.append(task)

    def _paragraph(self, block: SyntaxTreeNode, own: bool, role: str | None) -> None:
        text = inline(block.children[0], ticks=False)
        raw = block.children[0].content.replace("**", "")
        if own and self.unit.description is None and not text.rstrip().endswith(":"):
            self.unit.description = text.replace("\n", " ").strip()
        self.unit.text += "\n" + text
        for text_line in raw.split("\n"):
            found = files_line(text_line)
            if found and role not in ("notes", "criteria"):
                creates, reads = found
                d = Deliverable(text_line.strip(), creates, False, words_of(text_line))
                d.line, d.rule = line_of(block), "Files: line"
                if creates:
                    self.unit.deliverables.append(d)
                self.unit.reads += reads

    def _list(
        self, block: SyntaxTreeNode, role: str | None, section: str | None, labelled: bool
    ) -> None:
        for item in block.children:
            head = first_inline(item)
            text = inline(head, ticks=False).strip() if head else ""
            line = line_of(item)
            if role in ("skip", "notes"):
                self.skip(line, text, f"under {section!r}: not work")
            elif role == "criteria":
                self.unit.criteria.append(re.sub(r"^\[( |x|X)\]\s+", "", text).replace("\n", " "))
            elif role == "reads":
                self.unit.reads += paths_in_text(text) + [
                    p for p in task_from(item, None, "").paths if p not in self.unit.reads
                ]
            elif role == "deliverables":
                rule = f"item of {section!r}" if section else "deliverables list"
                self.unit.deliverables.append(deliverable_from(item, rule, labelled))
            elif role == "tasks" or block.type == "ordered_list":
                kind = "numbered item" if block.type == "ordered_list" else "list item"
                rule = f"{kind} under {section!r}" if section else kind
                task = task_from(item, section, rule)
                if is_checkbox(item):
                    task.rule = f"checklist item under {section!r}" if section else "checklist item"
                self.unit.tasks.append(task)
            elif is_checkbox(item):
                d = deliverable_from(item, "checklist item", labelled)
                self.unit.deliverables.append(d)
            else:
                rule = f"list item under {section!r}" if section else "list item"
                self.unit.plain.append(task_from(item, section, rule))

    def finish(self, promote: bool = True) -> None:
        """Bullets become the steps of a unit that has no other tasks or deliverables (not
        of a heading repeated in a summary: that only recaps)."""
        if promote and not self.unit.tasks and not self.unit.deliverables:
            self.unit.tasks, self.unit.plain = self.unit.plain, []
        for task in self.unit.plain:
            self.skip(task.line, task.name, "a bullet in a unit that has tasks or deliverables")
        self.unit.reads = list(dict.fromkeys(self.unit.reads))


def unit_from_heading(section: Section, rule: str, match: re.Match[str] | None = None) -> Unit:
    kind = title_kind(section.title)
    groups = match.groupdict() if match else {}
    name = clean_title(section.title)
    title = clean_title(groups.get("title") or (kind[2] if kind and kind[2] else section.title))
    marks = [m.group(1) for m in [MARKS.search(name)] if m]
    unit = Unit(name, title or name, section.line, rule, priority=priority_of(section.title))
    unit.marks = marks
    unit.text = section.title  # `## M3 — Release (requires M1)`
    if kind:
        unit.kind, unit.num = kind[0], kind[1]
    if groups.get("num"):
        unit.num = groups["num"]
        unit.kind = unit.kind or "w"
    return unit


def subtree(secs: list[Section], start: int) -> int:
    """The index after the last section under `secs[start]`."""
    end = start + 1
    while end < len(secs) and secs[end].level > secs[start].level:
        end += 1
    return end


def first_paragraph(root: SyntaxTreeNode) -> str | None:
    for block in root.children:
        if block.type == "heading":
            return None
        if block.type == "paragraph" and block.children:
            text = inline(block.children[0], ticks=False).split("\n")[0].strip()
            return text.lstrip("%#").strip() or None
    return None
