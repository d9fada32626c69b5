"""Reading a markdown phase plan: week sections, their tasks and deliverables.

Works on markdown-it's syntax tree, never with regexes over the raw text, so headings and
checkboxes inside code fences (plans quote templates) are never taken for plan content.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from markdown_it.tree import SyntaxTreeNode

_DELIVERABLES = re.compile(r"(?i)\b(deliverables?|outputs?)\b")


_CRITERIA = re.compile(
    r"(?i)success metrics?|acceptance|completion criteria|done when|definition of done"
)


_TASKS = re.compile(r"(?i)\btasks?\b")


_CHECKBOX = re.compile(r"^\[( |x|X)\]\s+")


_EDIT = re.compile(r"(?i)^(updated?|modif(y|ied)|edit(ed)?|extend(ed)?|revised?|amended?)\b")


_EXTENSION = re.compile(r"\.[A-Za-z][A-Za-z0-9]{0,7}$")


_PATHISH = re.compile(r"^(\./)?[\w.\-]+(/[\w.\-]*)*$")


_PRIORITIES = [
    (re.compile("\U0001f534|\\bCRITICAL\\b"), "critical"),
    (re.compile("\U0001f7e0|\\bHIGH (VALUE|PRIORITY)\\b"), "high"),
    (re.compile("\U0001f7e1|\\bMEDIUM\\b"), "medium"),
    (re.compile("\U0001f7e2|\\bLOW PRIORITY\\b"), "low"),
    (re.compile(r"(?i)\(optional"), "background"),
]


_MARKER_GROUP = re.compile("\\s*\\((\U0001f534|\U0001f7e0|\U0001f7e1|\U0001f7e2)[^)]*\\)")


_STOP_WORDS = "a an and are as at be by e g for from in into is it its of on or per the this to via"


_STOP = frozenset(
    f"{_STOP_WORDS} with all new add create updat md py txt json yaml yml fil each".split()
)


_SKIPPED_BLOCKS = frozenset(["fence", "code_block", "html_block"])


@dataclass
class _Section:
    level: int
    title: str
    line: int
    blocks: list[SyntaxTreeNode]


@dataclass
class _Deliverable:
    text: str
    paths: list[str]
    edit: bool
    words: set[str]


@dataclass
class _Task:
    name: str
    lines: list[str]
    paths: list[str]
    words: set[str]
    section: str | None
    creates: list[str] = field(default_factory=list)
    edits: list[str] = field(default_factory=list)
    deliverables: list[str] = field(default_factory=list)
    output_dirs: list[str] = field(default_factory=list)


@dataclass
class _Week:
    num: str
    name: str
    heading: str
    line: int
    priority: str | None
    description: str | None
    tasks: list[_Task] = field(default_factory=list)
    deliverables: list[_Deliverable] = field(default_factory=list)
    criteria: list[str] = field(default_factory=list)


def slug(text: str, limit: int = 40) -> str:
    """Lowercase words joined by '-', cut at a word boundary: stable, readable ids."""
    words = re.findall(r"[a-z0-9]+", text.lower())
    out = ""
    for word in words:
        candidate = f"{out}-{word}" if out else word
        if len(candidate) > limit and out:
            break
        out = candidate[:limit]
    return out or "item"


def _stem(word: str) -> str:
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) > len(suffix) + 2 and not word.endswith("ss"):
            word = word[: -len(suffix)]
            break
    return word[:-1] if word.endswith("e") and len(word) > 3 else word


def _words(text: str) -> set[str]:
    stems = {_stem(w) for w in re.findall(r"[a-z0-9]+", text.lower())}
    return stems - _STOP


def _inline(node: SyntaxTreeNode, ticks: bool = True) -> str:
    """Plain text of inline markdown; code spans keep their backticks when `ticks`."""
    if node.type == "code_inline":
        return f"`{node.content}`" if ticks else node.content
    if node.type in ("text", "html_inline"):
        return node.content if node.type == "text" else ""
    if node.type in ("softbreak", "hardbreak"):
        return " "
    return "".join(_inline(child, ticks) for child in node.children)


def _code_spans(node: SyntaxTreeNode | None) -> list[str]:
    if node is None or node.type == "code_inline":
        return [node.content.strip()] if node else []
    return [span for child in node.children for span in _code_spans(child)]


def _is_path(text: str, strict: bool) -> bool:
    """A relative file or folder path; `strict` (plain text) also wants '/' and an extension."""
    if not _PATHISH.match(text) or text.startswith(("-", "/")) or ".." in text.split("/"):
        return False
    if strict:
        return "/" in text and bool(_EXTENSION.search(text))
    return "/" in text or bool(_EXTENSION.search(text))


def _paths_in(node: SyntaxTreeNode) -> list[str]:
    """Paths a task names: in code spans, or as plain words like **docs/X.md**."""
    found = [s.removeprefix("./") for s in _code_spans(node) if _is_path(s, strict=False)]
    words = [w.rstrip(".,;:") for w in re.findall(r"[\w./\-]+", _inline(node, ticks=False))]
    found += [w.removeprefix("./") for w in words if _is_path(w, strict=True)]
    return list(dict.fromkeys(found))


def _first_inline(item: SyntaxTreeNode) -> SyntaxTreeNode | None:
    for child in item.children:
        if child.type == "paragraph" and child.children:
            return child.children[0]
    return None


def _item_lines(item: SyntaxTreeNode, depth: int) -> list[str]:
    """Everything under a list item but its first paragraph, as indented bullets."""
    lines: list[str] = []
    first = True
    for child in item.children:
        if child.type == "paragraph":
            if not first:
                lines.append("  " * depth + _inline(child.children[0]))
            first = False
        elif child.type in ("bullet_list", "ordered_list"):
            for sub in child.children:
                head = _first_inline(sub)
                lines.append("  " * depth + "- " + (_inline(head) if head else ""))
                lines.extend(_item_lines(sub, depth + 1))
    return lines


def _sections(root: SyntaxTreeNode) -> list[_Section]:
    sections: list[_Section] = []
    for block in root.children:
        if block.type == "heading":
            line = (block.map[0] + 1) if block.map else 0
            title = _inline(block.children[0], ticks=False).strip() if block.children else ""
            sections.append(_Section(int(block.tag[1:]), title, line, []))
        elif sections and block.type not in _SKIPPED_BLOCKS:
            sections[-1].blocks.append(block)
    return sections


def _task_from(item: SyntaxTreeNode, section: str | None) -> _Task:
    head = _first_inline(item)
    name = _CHECKBOX.sub("", _inline(head, ticks=False).strip()) if head else ""
    name = re.split(r"\s+[-\u2013\u2014]\s+", name, maxsplit=1)[0].strip() or "Task"
    lines = _item_lines(item, 0)
    words = _words(" ".join([_inline(head) if head else "", *lines]))
    return _Task(name, lines, _paths_in(item), words, section)


def _deliverable_from(item: SyntaxTreeNode) -> _Deliverable:
    head = _first_inline(item)
    text = _CHECKBOX.sub("", _inline(head).strip()) if head else ""
    spans = _code_spans(head)
    paths = [s.removeprefix("./") for s in spans if _is_path(s, strict=False)]
    # a command in a deliverable says how to check it, not what it is about
    about = re.sub(r"`[^`]*\s[^`]*`", " ", text)
    return _Deliverable(text, paths, bool(_EDIT.match(text)), _words(about))


def _read_week(week: _Week, sections: list[_Section], warnings: list[str]) -> None:
    """Collect the tasks, deliverables and criteria of one week's sections."""
    for index, section in enumerate(sections):
        is_deliverables = index > 0 and bool(_DELIVERABLES.search(section.title))
        is_criteria = index > 0 and bool(_CRITERIA.search(section.title))
        named_tasks = index > 0 and bool(_TASKS.search(section.title))
        label = section.title if index > 0 and section.title.lower() != "tasks" else None
        for block in section.blocks:
            if block.type not in ("bullet_list", "ordered_list"):
                continue
            for item in block.children:
                head = _first_inline(item)
                raw = head.content if head else ""
                if is_criteria:
                    week.criteria.append(_CHECKBOX.sub("", _inline(head or item).strip()))
                elif is_deliverables or (_CHECKBOX.match(raw) and not named_tasks):
                    week.deliverables.append(_deliverable_from(item))
                elif block.type == "ordered_list" or named_tasks:
                    week.tasks.append(_task_from(item, label))
                else:
                    where = f"line {(item.map[0] + 1) if item.map else section.line}"
                    warnings.append(
                        f"{where}: bullet under {section.title!r} is not a task or "
                        "deliverable; left out"
                    )


def _weeks(root: SyntaxTreeNode, pattern: re.Pattern[str], warnings: list[str]) -> list[_Week]:
    sections = _sections(root)
    weeks: dict[str, _Week] = {}
    starts = [i for i, s in enumerate(sections) if pattern.search(s.title)]
    for start in starts:
        head = sections[start]
        inside = (
            j
            for j, s in enumerate(sections)
            if j > start and (s.level <= head.level or j in starts)
        )
        end = next(inside, len(sections))
        match = pattern.search(head.title)
        assert match is not None
        groups = match.groupdict()
        num = groups.get("num") or str(len(weeks) + 1)
        key = groups.get("num") or head.title.lower()
        title = _MARKER_GROUP.sub("", groups.get("title") or head.title).strip()
        name = _MARKER_GROUP.sub("", head.title).strip()
        priority = next((p for rx, p in _PRIORITIES if rx.search(head.title)), None)
        paragraphs = [b for b in head.blocks if b.type == "paragraph" and b.children]
        description = _inline(paragraphs[0].children[0], ticks=False) if paragraphs else None
        week = _Week(num, name, title, head.line, priority, description)
        _read_week(week, sections[start:end], warnings)
        first = weeks.setdefault(key, week)
        if first is week:
            continue
        merge = bool(week.tasks or week.deliverables)  # a summary repeating the heading: ignored
        if merge:
            first.tasks, first.deliverables = (
                first.tasks + week.tasks,
                first.deliverables + week.deliverables,
            )
            first.criteria += week.criteria
        done = "its tasks and deliverables were merged into it" if merge else "it has none; ignored"
        warnings.append(
            f"line {head.line}: {head.title!r} repeats the heading of line {first.line}; {done}"
        )
    return list(weeks.values())
