"""spec-kit `tasks.md`: `## Phase N: Title` groups of `- [ ] T012 [P] [US1] Do x in src/a.py`.

Order inside a phase is sequence, `[P]` items run beside their siblings; phases follow each
other unless the `Dependencies & Execution Order` section says otherwise, in prose
(`**US2 (Phase 4)**: Depends on Phase 3`, `T008 blocks T009, T015`, `Tests (T004-T007)
before implementation (T008-T014)`, `T004 and T005 can run in parallel after T001`).
"""

from __future__ import annotations

import re
from pathlib import Path

from uet_doit.plans.dialects.checklist import Entry, body_text, checkbox_sync, entries
from uet_doit.plans.dialects.files import item_files
from uet_doit.plans.dialects.model import Group, Item, PlanDoc

NAME = "spec-kit"
TITLE = "spec-kit tasks.md"
EXAMPLE = "## Phase 1: Setup\n- [ ] T001 [P] [US1] Create the model in src/models/user.py"

_TASK = re.compile(r"^\**(?P<id>T-?\d{2,4}[a-z]?)\b\**[:.]?\**\s*(?P<rest>.*)$")
_TAG = re.compile(r"^\[(?P<tag>[^\]]+)\]\s*")
_PHASE = re.compile(r"(?i)^phase\s+(?P<num>\d+(?:\.\d+)*)\s*[:.\-\u2013\u2014]?\s*(?P<title>.*)$")
_STORY = re.compile(r"(?i)\b(?:user\s+story|US)\s*-?(?P<n>\d+)\b")
_LABEL = re.compile(r"^\s*[-*]\s+\*\*(?P<label>[^*]+?)\*\*:?\s*:?\s*(?P<rest>.*)$")
_FIELD = re.compile(r"^\s*\*\*(?P<name>[^*]+?)\*\*\s*:?\s*:?\s*(?P<rest>.*)$")
_DEPS_HEADING = re.compile(r"(?i)\b(dependenc|execution order|task order|ordering)")
_TRIGGER = re.compile(
    r"(?i)\b(depends?\s+on|can\s+start\s+after|starts?\s+after|after|requires?|blocked\s+by"
    r"|needs|waits?\s+for)\b"
)
_REVERSE = re.compile(r"(?i)\b(blocks|before|precedes?|must\s+complete\s+before)\b")
_CUT = re.compile(
    r"\s[-\u2013\u2014]\s|;|\.\s|\(needs\b|\bbut\b|\bonly\b|\bcan\s+run\b|\bin\s+parallel\b"
    r"|\bparallel\s+with\b|\bsince\b|\bbecause\b",
    re.I,
)
#: `(US3 and US6 are independent)`, `(not US1)`: a remark that names what it is NOT after
_ASIDE = re.compile(r"\([^()]*\b(independent|not|no|without|but|parallel)\b[^()]*\)", re.I)
_RANGE = re.compile(r"\bT-?(\d{2,4})\s*(?:-|\u2013|\u2014|\.\.|to|through)\s*T-?(\d{2,4})\b")
_TASK_REF = re.compile(r"\bT-?(\d{2,4}[a-z]?)\b")


def detect(path: Path, text: str) -> str | None:
    ids = sum(1 for e in entries(text) if e.kind == "check" and _TASK.match(e.text))
    if "[ID] [P?] [Story]" in text or "[ID] [P?]" in text:
        return "it has the spec-kit task format line `[ID] [P?] [Story] Description`"
    if ids >= 2 and re.search(r"(?im)^#{2,3}\s+phase\s+\d", text):
        return f"{ids} checkbox items with T-numbered ids (`- [ ] T001 ...`) under Phase headings"
    if ids >= 3:
        return f"{ids} checkbox items with T-numbered ids (`- [ ] T001 ...`)"
    return None


def _story(title: str) -> str | None:
    m = _STORY.search(title)
    return f"US{m.group('n')}" if m else None


def read(text: str, source: str) -> PlanDoc:
    found = entries(text)
    title = next((e.text for e in found if e.kind == "heading" and e.level == 1), None)
    doc = PlanDoc(
        title and re.sub(r"(?i)^tasks:\s*", "", title), chain_items=True, chain_groups=True
    )
    group: Group | None = None
    deps_lines: list[tuple[int, str]] = []
    in_deps = False
    holds = _holding_tasks(found)
    for e in found:
        if e.kind == "heading":
            if e.level <= 2:
                in_deps = bool(_DEPS_HEADING.search(e.text))
            if in_deps:
                deps_lines.extend(e.body)
                continue
            m = _PHASE.match(e.text)
            if e.level <= 3 and (m or (e.level == 2 and e.line in holds)):
                key = f"phase-{m.group('num')}" if m else f"section-{e.line}"
                name = e.text
                group = Group(key, name, f"{source}:{e.line}", rule="spec-kit phase heading")
                group.metadata["story"] = _story(e.text)
                if not group.metadata["story"]:
                    del group.metadata["story"]
                if "mvp" in e.text.lower() or "\U0001f3af" in e.text:
                    group.priority = "critical"
                _fields(group, e.body)
                doc.groups.append(group)
            elif e.level <= 2:
                group = None
            elif group is not None:
                _fields(group, e.body)
            continue
        if in_deps:
            deps_lines.append((e.line, e.raw or e.text))
            deps_lines.extend(e.body)
            continue
        m = _TASK.match(e.text)
        if not m or e.indent > 1:
            if group is not None and group.items:
                group.items[-1].body.append(e.raw.strip() or e.text)
            continue
        if group is None:
            group = Group("tasks", "Tasks", f"{source}:{e.line}", rule="tasks before any phase")
            doc.groups.append(group)
        group.items.append(_item(e, m, source))
        _fields(group, e.body)
    doc.groups = [g for g in doc.groups if g.items]
    _dependencies(doc, deps_lines)
    m = re.search(r"(?m)^\*\*Input\*\*:?\s*(?P<input>.+)$", text)  # `Design documents from ...`
    doc.context.append(
        m.group("input").strip()
        if m
        else f"the design documents (spec.md, plan.md) beside {source}"
    )
    return doc


def _holding_tasks(found: list[Entry]) -> set[int]:
    """Lines of the level-1/2 headings with task lines before the next such heading."""
    holds: set[int] = set()
    current: int | None = None
    for e in found:
        if e.kind == "heading" and e.level <= 2:
            current = e.line
        elif e.kind == "check" and current is not None and _TASK.match(e.text):
            holds.add(current)
    return holds


def _fields(group: Group, body: list[tuple[int, str]]) -> None:
    """`**Goal**:`, `**Purpose**:`, `**Checkpoint**:`, `**Independent Test**:` lines."""
    for _, line in body:
        m = _FIELD.match(line)
        if not m:
            continue
        name, rest = m.group("name").strip().lower().rstrip(":"), m.group("rest").strip()
        if name in ("goal", "purpose") and not group.description:
            group.description = rest
        elif name in ("checkpoint", "independent test") and rest:
            group.criteria.append(rest)


def _item(e: Entry, m: re.Match[str], source: str) -> Item:
    rest = m.group("rest")
    tags: list[str] = []
    while t := _TAG.match(rest):
        tags.append(t.group("tag").strip())
        rest = rest[t.end() :]
    item = Item(m.group("id").replace("-", ""), rest.strip(), f"{source}:{e.line}")
    item.rule = "spec-kit task line"
    item.parallel = any(t.upper() == "P" for t in tags)
    story = next((t for t in tags if re.fullmatch(r"(?i)US\d+|story\s*\d+", t)), None)
    if story:
        item.metadata["story"] = story.upper().replace("STORY", "US").replace(" ", "")
    other = [t for t in tags if t.upper() != "P" and t != story]
    if other:
        item.metadata["tags"] = other
    item.status = e.status
    item.body = body_text(e.body)
    creates, edits, folders = item_files(item.title, item.body)
    item.creates, item.edits = creates, edits
    if folders:
        item.metadata["output_dirs"] = folders
    item.sync = checkbox_sync(e)
    return item


def _expand(text: str) -> list[str]:
    """Task ids named in a phrase, ranges (`T023-T025`, `T023..T025`, en dash too) spelled out."""
    out: list[str] = []
    spans: list[tuple[int, int]] = []
    for m in _RANGE.finditer(text):
        a, b = int(m.group(1)), int(m.group(2))
        width = len(m.group(1))
        if 0 <= b - a <= 500:
            out += [f"T{n:0{width}d}" for n in range(a, b + 1)]
        spans.append(m.span())
    for m in _TASK_REF.finditer(text):
        if not any(s <= m.start() < e for s, e in spans):
            out.append(f"T{m.group(1)}")
    return out


def _index(doc: PlanDoc, key: str) -> int:
    return next((i for i, g in enumerate(doc.groups) if g.key == key), 0)


def _refs(text: str, doc: PlanDoc, before: str | None = None) -> list[str]:
    """Groups and items a phrase names: Phase 3, US2 / User Story 2, Setup, Foundational,
    Polish, `all user stories`, task ids and ranges."""
    keys: list[str] = []
    for m in re.finditer(r"(?i)\bphases?\s+(\d+)\s*(?:-|\u2013|\u2014|to|through)\s*(\d+)\b", text):
        keys += [f"phase-{n}" for n in range(int(m.group(1)), int(m.group(2)) + 1)]
    for m in re.finditer(r"(?i)\bphases?\s+(\d+(?:\.\d+)*)", text):
        keys.append(f"phase-{m.group(1)}")
    if re.search(
        r"(?i)\ball\s+(?:the\s+)?(?:prior|previous|preceding|earlier|other)\s+phases", text
    ):
        keys += [g.key for g in doc.groups[: _index(doc, before)]] if before else []
    for m in _STORY.finditer(text):
        keys += [g.key for g in doc.groups if g.metadata.get("story") == f"US{m.group('n')}"]
    if re.search(r"(?i)\ball\b[\w\s]*\b(user\s+)?stories\b", text):
        keys += [g.key for g in doc.groups if g.metadata.get("story")]
    for word in ("setup", "foundational", "polish", "tests?", "integration", "core"):
        if re.search(rf"(?i)\b{word}\b", text) and not re.search(r"(?i)\bphases?\s+\d", text):
            keys += [g.key for g in doc.groups if re.search(rf"(?i)\b{word}\b", g.title)][:1]
    items = {i.key for g in doc.groups for i in g.items}
    keys += [k for k in _expand(text) if k in items]
    return list(dict.fromkeys(keys))


def _subjects(label: str, doc: PlanDoc) -> list[str]:
    if re.search(r"(?i)user\s+stories|phase\s+\d+\+", label):
        return [g.key for g in doc.groups if g.metadata.get("story")]
    return _refs(label, doc)


def _dependencies(doc: PlanDoc, lines: list[tuple[int, str]]) -> None:
    groups = {g.key: g for g in doc.groups}
    items = {i.key: i for g in doc.groups for i in g.items}
    column: int | None = None  # the `Depends On` column of the table being read
    for _, line in lines:
        text = line.strip()
        if text.startswith("|"):
            cells = [c.strip() for c in text.strip("|").split("|")]
            if all(re.fullmatch(r":?-+:?", c) for c in cells if c):
                continue
            heads = [i for i, c in enumerate(cells) if re.search(r"(?i)depends|blocked by", c)]
            if heads and column is None:
                column = heads[0]
            elif column is not None and column < len(cells):
                subjects = _subjects(cells[0], doc)
                _edges(subjects, f"depends on {cells[column]}", doc, groups, items)
            continue
        column = None
        if not text or text.startswith("#"):
            continue
        label = _LABEL.match(text)
        if label:
            subjects, rest = _subjects(label.group("label"), doc), label.group("rest")
        else:
            subjects, rest = [], re.sub(r"^[-*\d.)\s]+", "", text)
        if re.search(r"(?i)\bparallel\b", rest) and not label:
            _parallel(rest, items)
        _edges(subjects, rest, doc, groups, items)


def _parallel(text: str, items: dict[str, Item]) -> None:
    """`T004 and T005 can run in parallel (after T001)`: no order edge between them."""
    head = re.split(r"(?i)\bparallel\b", text, maxsplit=1)[0]
    named = [k for k in _expand(head) if k in items]
    if len(named) >= 2:
        for key in named:
            items[key].parallel = True


def _edges(
    subjects: list[str],
    rest: str,
    doc: PlanDoc,
    groups: dict[str, Group],
    items: dict[str, Item],
) -> None:
    if re.match(r"(?i)\s*(no\s+dependencies|none\b|can\s+start\s+immediately)", rest):
        for key in subjects:
            if key in groups:
                groups[key].depends = groups[key].depends or []
        return
    trigger = _TRIGGER.search(rest)
    reverse = _REVERSE.search(rest)
    if trigger and (not reverse or trigger.start() < reverse.start()):
        before = subjects if subjects else _refs(rest[: trigger.start()], doc)
        said = _CUT.split(_ASIDE.sub(" ", rest[trigger.end() :]))[0]
        for subject in before:
            _add([subject], _refs(said, doc, subject), groups, items)
    elif reverse:
        first = _refs(rest[: reverse.start()], doc) or subjects
        then = _refs(_CUT.split(_ASIDE.sub(" ", rest[reverse.end() :]))[0], doc)
        _add(then, first, groups, items)


def _add(
    subjects: list[str], deps: list[str], groups: dict[str, Group], items: dict[str, Item]
) -> None:
    for key in subjects:
        wanted = [d for d in deps if d != key]
        if not wanted:
            continue  # a phrase naming nothing we know: the order stays
        if key in groups:
            group = groups[key]
            inside = {i.key for i in group.items}
            group.depends = list(
                dict.fromkeys([*(group.depends or []), *(d for d in wanted if d not in inside)])
            )
        elif key in items:
            items[key].depends = list(dict.fromkeys([*items[key].depends, *wanted]))
