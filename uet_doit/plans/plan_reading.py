"""Which parts of a plan are its units: the rules tried in order, the first that finds any wins.

1. unit headings (`--unit-pattern`, else the known shapes) at the shallowest level holding one;
2. the same as stand-alone lines in a plan without such headings (pasted text, unboxed);
3. numbered headings (`## 1. Setup`) that are not notes, two at least;
4. the plan's tasks section(s) (`--tasks-section NAME`, else titles like Tasks, Checklist,
   Next actions) and `Step N` headings, as one workstream;
5. its top-level numbered items, as one workstream;
6. its sections that hold lists and are not notes, one workstream each (two at least).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode

from uet_doit.errors import UsageError
from uet_doit.plans.plan_markdown import Section, clean_title, role_of, sections
from uet_doit.plans.plan_text import (
    TASK_TITLE,
    blank_front_matter,
    promote_lines,
    title_kind,
    unbox,
)
from uet_doit.plans.plan_units import (
    Reading,
    Unit,
    UnitReader,
    first_paragraph,
    ref_key,
    subtree,
    unit_from_heading,
)


@dataclass
class Plan:
    """A parsed plan: its title, its units, and how they were found."""

    title: str | None
    reading: Reading


def _parse(text: str) -> tuple[SyntaxTreeNode, list[Section]]:
    root = SyntaxTreeNode(MarkdownIt("commonmark").enable("table").parse(text))
    return root, sections(root, text.split("\n"))


def _heading_units(secs: list[Section], pattern: re.Pattern[str] | None, reading: Reading) -> bool:
    repeats: list[int] = []
    if pattern is not None:
        starts = [i for i, s in enumerate(secs) if pattern.search(s.title)]
        rule = f"heading matching --unit-pattern {pattern.pattern!r}"
    else:
        found = [
            i for i, s in enumerate(secs) if title_kind(s.title) and not TASK_TITLE.match(s.title)
        ]
        level = _unit_level([secs[i].level for i in found])
        starts = [i for i in found if secs[i].level == level]
        rule = f"unit heading (level {level})"
        repeats = _repeats(secs, found, starts)
        starts = sorted(starts + repeats)
    if not starts:
        return False
    units: dict[tuple[str, str] | str, Unit] = {}
    for n, start in enumerate(starts):
        head = secs[start]
        end = subtree(secs, start)
        if n + 1 < len(starts):
            end = min(end, starts[n + 1])
        match = pattern.search(head.title) if pattern is not None else None
        unit = unit_from_heading(head, rule, match)
        unit.raw = head.raw
        reader = UnitReader(unit, reading)
        parts = [(s, None, j == start) for j, s in enumerate(secs[start:end], start)]
        reader.read(_inherit(parts))
        key = unit.key or head.title.lower()
        first = units.setdefault(key, unit)
        if first is unit:
            reader.finish()
            continue
        reader.finish(promote=start not in repeats)  # a summary's bullets only recap
        merge = bool(unit.tasks or unit.deliverables)  # a summary repeating the heading: ignored
        if merge:
            first.tasks += unit.tasks
            first.deliverables += unit.deliverables
            first.criteria += unit.criteria
            first.reads += [r for r in unit.reads if r not in first.reads]
            first.text += unit.text
        done = "its tasks and deliverables were merged into it" if merge else "it has none; ignored"
        reading.warnings.append(
            f"line {head.line}: {head.title!r} repeats the heading of line {first.line}; {done}"
        )
    reading.units = list(units.values())
    inside = {j for n, i in enumerate(starts) for j in range(i, _end(secs, starts, n))}
    for i, s in enumerate(secs):
        if i not in inside and s.level > 1:
            reading.skipped.append((s.line, s.title, "outside every unit: not work"))
            if role_of(s.title) == "notes":
                reading.notes.append((s.line, s.title))
    return True


def _end(secs: list[Section], starts: list[int], n: int) -> int:
    end = subtree(secs, starts[n])
    return min(end, starts[n + 1]) if n + 1 < len(starts) else end


def _unit_level(levels: list[int]) -> int:
    """The shallowest level with two units, else the shallowest with one: a `# PH-00` title
    over `## Phase 1`, `## Phase 2` is the plan's name, not its only unit."""
    shared = [lv for lv in set(levels) if levels.count(lv) > 1]
    return min(shared or levels, default=0)


def _repeats(secs: list[Section], found: list[int], starts: list[int]) -> list[int]:
    """Deeper headings outside every unit that repeat a unit's title (a summary at the end)."""
    keys = {_key(secs[i].title) for i in starts}
    inside = {j for i in starts for j in range(i, subtree(secs, i))}
    return [i for i in found if i not in inside and _key(secs[i].title) in keys]


def _key(title: str) -> tuple[str, str] | None:
    kind = title_kind(title)
    return ref_key(kind[0], kind[1]) if kind else None


def _inherit(parts: list[tuple[Section, None, bool]]) -> list[tuple[Section, str | None, bool]]:
    """Each sub-section gets the role of its nearest titled ancestor inside the unit."""
    out: list[tuple[Section, str | None, bool]] = []
    stack: list[tuple[int, str | None]] = []
    for section, _, own in parts:
        while stack and stack[-1][0] >= section.level:
            stack.pop()
        inherited = next((r for _, r in reversed(stack) if r), None)
        out.append((section, inherited, own))
        stack.append((section.level, None if own else role_of(section.title) or inherited))
    return out


def _single_unit(
    secs: list[Section],
    chosen: list[int],
    title: str,
    rule: str,
    reading: Reading,
    force: bool = False,
) -> None:
    """One workstream from the chosen sections (and their sub-sections), plus the plan's
    deliverables, criteria and read-only reference sections wherever they are."""
    unit = Unit(title, title, secs[chosen[0]].line if chosen else 1, rule)
    picked: set[int] = set()
    for start in chosen:
        picked.update(range(start, subtree(secs, start)))
    for i, s in enumerate(secs):
        wanted = role_of(s.title) in ("deliverables", "criteria", "reads")
        if wanted and not any(j in picked for j in range(i, subtree(secs, i))):
            picked.update(range(i, subtree(secs, i)))
    parts = [(secs[i], None, False) for i in sorted(picked)]
    for i, s in enumerate(secs):
        if i not in picked and s.level > 1:
            reading.skipped.append((s.line, s.title, f"not part of the {rule}"))
            if role_of(s.title) == "notes":
                reading.notes.append((s.line, s.title))
    forced = frozenset(secs[i].line for i in chosen) if force else frozenset()
    reader = UnitReader(unit, reading, forced)
    reader.read(_inherit(parts))
    reader.finish()
    if unit.tasks or unit.deliverables:
        reading.units = [unit]


def read_plan(
    text: str,
    *,
    unit_pattern: re.Pattern[str] | None = None,
    tasks_section: str | None = None,
) -> Plan:
    """The units of a plan, by the first rule that finds any (see the module docstring)."""
    text, boxed = unbox(blank_front_matter(text.replace("\r\n", "\n")))
    root, secs = _parse(text)
    reading = Reading([], "", headings=[s.title for s in secs], items=_count_items(root))
    if boxed:
        reading.warnings.append("the plan is a terminal paste: its box borders were removed")
    title = next((s.title for s in secs if s.level == 1), None) or first_paragraph(root)
    if tasks_section is not None:
        wanted = tasks_section.lower()
        chosen = [i for i, s in enumerate(secs) if wanted in s.title.lower()]
        if not chosen:
            raise UsageError(
                f"no section titled like {tasks_section!r}",
                "sections seen: " + "; ".join(s.title for s in secs[:12]),
            )
        rule = f"--tasks-section {tasks_section!r}"
        _single_unit(secs, chosen, title or "Tasks", rule, reading, force=True)
        reading.mode = "tasks-section"
        return Plan(title, reading)
    if _heading_units(secs, unit_pattern, reading):
        reading.mode = "unit headings"
        return Plan(title, reading)
    matcher = unit_pattern.search if unit_pattern is not None else None
    promoted = promote_lines(text, (lambda s: bool(matcher(s))) if matcher else None)
    if promoted is not None:
        root2, secs2 = _parse(promoted)
        if _heading_units(secs2, unit_pattern, reading):
            reading.mode = "unit lines"
            title = title or first_paragraph(root2)
            return Plan(title, reading)
    if unit_pattern is not None:
        return Plan(title, reading)
    if _numbered_units(secs, reading):
        return Plan(title, reading)
    name = clean_title(title) if title else "Plan"
    tasks = [
        i
        for i, s in enumerate(secs)
        if (role_of(s.title) == "tasks" or TASK_TITLE.match(s.title))
        and not _under(secs, i, ("criteria", "notes"))
    ]
    tasks = [i for i in tasks if not any(j < i <= subtree(secs, j) - 1 for j in tasks if j != i)]
    if tasks:
        _single_unit(secs, tasks, name, "tasks section", reading)
        reading.mode = "tasks section"
        if reading.units:
            return Plan(title, reading)
    numbered = [
        i
        for i, s in enumerate(secs)
        if role_of(s.title) not in ("notes", "criteria")
        and any(b.type == "ordered_list" for b in s.blocks)
        and not _under(secs, i, ("notes", "criteria"))
    ]
    if numbered:
        _single_unit(secs, numbered, name, "numbered items", reading)
        reading.mode = "numbered items"
        if reading.units:
            return Plan(title, reading)
    _section_units(secs, reading)
    return Plan(title, reading)


def _count_items(root: SyntaxTreeNode) -> int:
    return sum(1 for node in root.walk() if node.type == "list_item")


_NUMBERED_HEADING = re.compile(r"^(?P<num>\d+(?:\.\d+)*)[.)]?\s+(?P<title>\S.*)$")


def _numbered_units(secs: list[Section], reading: Reading) -> bool:
    """`## 1. Setup`, `## 2. Build`: numbered headings that are not notes, two at least."""
    found = [
        i
        for i, s in enumerate(secs)
        if s.level > 1 and _NUMBERED_HEADING.match(s.title) and role_of(s.title) is None
    ]
    level = _unit_level([secs[i].level for i in found])
    starts = [i for i in found if secs[i].level == level]
    if len(starts) < 2:
        return False
    for start in starts:
        unit = unit_from_heading(secs[start], f"numbered heading (level {level})")
        m = _NUMBERED_HEADING.match(secs[start].title)
        assert m is not None
        unit.kind, unit.num, unit.title = "n", m.group("num"), m.group("title")
        reader = UnitReader(unit, reading)
        end = subtree(secs, start)
        reader.read(_inherit([(s, None, j == start) for j, s in enumerate(secs[start:end], start)]))
        reader.finish()
        reading.units.append(unit)
    reading.mode = "numbered headings"
    return True


def _under(secs: list[Section], i: int, roles: tuple[str, ...]) -> bool:
    level = secs[i].level
    for j in range(i - 1, -1, -1):
        if secs[j].level < level:
            if role_of(secs[j].title) in roles:
                return True
            level = secs[j].level
    return False


def _section_units(secs: list[Section], reading: Reading) -> None:
    candidates = [
        i
        for i, s in enumerate(secs)
        if s.level > 1
        and role_of(s.title) is None
        and any(b.type in ("bullet_list", "ordered_list") for b in s.blocks)
    ]
    level = min((secs[i].level for i in candidates), default=0)
    starts = [i for i in candidates if secs[i].level == level]
    if len(starts) < 2:
        return
    for start in starts:
        unit = unit_from_heading(secs[start], f"section with a list (level {level})")
        reader = UnitReader(unit, reading)
        parts = [
            (s, None, j == start) for j, s in enumerate(secs[start : subtree(secs, start)], start)
        ]
        reader.read(_inherit(parts))
        reader.finish()
        reading.units.append(unit)
    reading.mode = "sections"
