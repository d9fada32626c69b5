"""`uet convert PLAN.md`: a markdown phase plan becomes a bundle, the same way every time.

The plan is read through markdown-it's syntax tree, never with regexes over the raw text, so
headings and checkboxes inside code fences (plans quote templates) are never taken for plan
content. Week headings become chained workstreams, numbered task items steps, and deliverable
checkboxes the files those steps create.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode
from pydantic import ValidationError

from uet_doit.errors import BundleError, Problem, UetError, UsageError
from uet_doit.model import ID_PATTERN, Bundle

DEFAULT_HEADING_PATTERN = r"(?i)^week\s+(?P<num>\d+)(\s*:|\s+[-\u2013\u2014])\s*(?P<title>.+)$"

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


def _match_score(deliverable: _Deliverable, task: _Task) -> int:
    best = 0
    for path in deliverable.paths:
        base = path.rstrip("/").rsplit("/", 1)[-1]
        for mentioned in task.paths:
            if mentioned.rstrip("/") == path.rstrip("/"):
                best = max(best, 1000)
            elif "/" not in mentioned.rstrip("/") and mentioned == base:
                best = max(best, 800)
            elif mentioned.endswith("/") and path.startswith(mentioned):
                best = max(best, 500)
    if best:
        return best
    return len(deliverable.words & task.words)


def _place(week: _Week, warnings: list[str], prefix: str) -> list[_Task]:
    """Give each deliverable to the task it belongs to, else to a step of its own."""
    tasks = list(week.tasks)
    for deliverable in week.deliverables:
        scored = [(_match_score(deliverable, task), -i, task) for i, task in enumerate(tasks)]
        best = max(scored, key=lambda s: (s[0], s[1]), default=None)
        if best and best[0] > 0:
            task = best[2]
        else:
            task = _Task(deliverable.text.replace("`", ""), [], deliverable.paths, set(), None)
            tasks.append(task)
        task.deliverables.append(deliverable.text)
        for path in deliverable.paths:
            bare = [p for p in task.paths if "/" not in p and _EXTENSION.search(p)]
            if deliverable.edit:
                task.edits.append(path)
            elif not path.endswith("/"):
                task.creates.append(path)
            elif bare:  # `docs/adr/` whose task names `0001-x.md`, ...: the files it holds
                task.creates.extend(path + name for name in bare)
            else:
                task.output_dirs.append(path)
                warnings.append(
                    f"{prefix}: deliverable `{path}` is a folder; it is in the step's "
                    "instruction, not its create_files (name its files to make them targets)"
                )
    return tasks


def _step(
    task: _Task, step_id: str, created: dict[str, str], warnings: list[str]
) -> dict[str, Any]:
    creates: list[str] = []
    edits = list(dict.fromkeys(task.edits))
    for path in dict.fromkeys(task.creates):
        if path in created:
            warnings.append(
                f"{step_id}: `{path}` is already created by {created[path]}; listed as an input"
            )
            edits.append(path)
        else:
            created[path] = step_id
            creates.append(path)
    lines = [task.name, *task.lines]
    if task.deliverables:
        lines += ["", "Deliverables:", *(f"- {d}" for d in task.deliverables)]
    context: dict[str, Any] = {"instruction": "\n".join(lines)}
    if edits:
        context["files"] = [p for p in edits if p not in creates]
    if creates:
        context["create_files"] = creates
    step: dict[str, Any] = {"step_id": step_id, "name": task.name, "context": context}
    metadata: dict[str, Any] = {}
    if task.section:
        metadata["section"] = task.section
    if task.output_dirs:
        metadata["output_dirs"] = task.output_dirs
    if metadata:
        step["metadata"] = metadata
    return step


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


def convert_markdown(
    text: str,
    *,
    source: str,
    heading_pattern: str = DEFAULT_HEADING_PATTERN,
    tool: str | None = None,
    bundle_id: str | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """The bundle (validated) made from a phase plan's text, and what could not be placed."""
    try:
        pattern = re.compile(heading_pattern)
    except re.error as exc:
        raise UsageError(
            f"--heading-pattern {heading_pattern!r} is not a valid regex: {exc}",
            "quote it in the shell, e.g. --heading-pattern '^Phase (?P<num>\\d+): (?P<title>.+)'",
        ) from exc
    if bundle_id is not None and not re.match(ID_PATTERN, bundle_id):
        raise UsageError(
            f"--bundle-id {bundle_id!r} is not a valid id", "use letters, digits, '-', '_', '.'"
        )
    root = SyntaxTreeNode(MarkdownIt("commonmark").parse(text))
    warnings: list[str] = []
    weeks = _weeks(root, pattern, warnings)
    if not weeks:
        titles = [s.title for s in _sections(root)][:6]
        raise UsageError(
            f"no workstream headings found matching `{heading_pattern}` in {source}",
            "pass --heading-pattern REGEX to say which headings start a workstream"
            + (f"; headings seen: {'; '.join(titles)}" if titles else "; the plan has no headings"),
        )
    workstreams: list[dict[str, Any]] = []
    created: dict[str, str] = {}
    used: set[str] = set()
    for week in weeks:
        prefix = f"w{week.num}"
        ws_id = _unique(f"{prefix}-{slug(week.heading)}", used)
        tasks = _place(week, warnings, ws_id)
        if not tasks:
            warnings.append(f"{ws_id}: no tasks or deliverables found; one step does it all")
            tasks = [_Task(week.name, [week.description or ""], [], set(), None)]
        steps = [
            _step(task, _unique(f"{prefix}-{i:02d}-{slug(task.name, 32)}", used), created, warnings)
            for i, task in enumerate(tasks, start=1)
        ]
        ws: dict[str, Any] = {"ws_id": ws_id, "name": week.name}
        if week.description:
            ws["description"] = week.description
        if week.priority:
            ws["priority"] = week.priority
        ws["depends_on"] = [workstreams[-1]["ws_id"]] if workstreams else []
        ws["steps"] = steps
        if week.criteria:
            ws["completion_criteria"] = week.criteria
        ws["metadata"] = {"heading": week.name, "line": week.line}
        workstreams.append(ws)
    h1 = next((s.title for s in _sections(root) if s.level == 1), None)
    stem = Path(source).stem
    bundle: dict[str, Any] = {"bundle_id": bundle_id or slug(stem, 60), "bundle_name": h1 or stem}
    if tool:
        bundle["tool_profile_id"] = tool
    bundle["workstreams"] = workstreams
    bundle["metadata"] = {"converted_from": Path(source).name}
    check_bundle(bundle, source)
    return bundle, warnings


def _unique(candidate: str, used: set[str]) -> str:
    result, n = candidate, 2
    while result in used:
        result, n = f"{candidate}-{n}", n + 1
    used.add(result)
    return result


def check_bundle(data: dict[str, Any], source: str) -> Bundle:
    """Validate a bundle we made; a failure lists every field at fault."""
    try:
        return Bundle.model_validate(data)
    except ValidationError as exc:
        problems = [
            Problem(source, ".".join(str(p) for p in err["loc"]), err["msg"])
            for err in exc.errors()
        ]
        raise BundleError(problems) from exc


def write_output(data: dict[str, Any], output: str | None) -> None:
    """JSON (indent 2) or YAML by the file's extension; stdout gets JSON."""
    if output is None:
        sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        return
    path = Path(output)
    if path.suffix.lower() in (".yaml", ".yml"):
        text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
    elif path.suffix.lower() == ".json":
        text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    else:
        raise UsageError(f"cannot tell the format of {output}", "name it *.json, *.yaml or *.yml")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UetError(f"cannot write {output}: {exc.strerror}") from exc


def summary(bundle: dict[str, Any]) -> list[str]:
    """A total line, then one per workstream: what a user checks before running."""
    lines, steps, files = [], 0, 0
    for ws in bundle["workstreams"]:
        n = sum(len(s["context"].get("create_files", [])) for s in ws["steps"])
        steps, files = steps + len(ws["steps"]), files + n
        tag = f" [{ws['priority']}]" if ws.get("priority") else ""
        lines.append(f"  {ws['ws_id']}{tag}: {len(ws['steps'])} steps, {n} files to create")
    total = f"{len(bundle['workstreams'])} workstreams, {steps} steps, {files} files to create"
    return [f"bundle {bundle['bundle_id']}: {total}", *lines]


def run_convert(args: argparse.Namespace) -> int:
    try:
        text = Path(args.plan).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {args.plan}: {exc}", "check the path") from exc
    bundle, warnings = convert_markdown(
        text,
        source=args.plan,
        heading_pattern=args.heading_pattern,
        tool=args.tool,
        bundle_id=args.bundle_id,
    )
    write_output(bundle, args.output)
    lines = summary(bundle) + [f"warning: {w}" for w in warnings]
    print("\n".join(lines + ([f"wrote {args.output}"] if args.output else [])), file=sys.stderr)
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "convert",
        help="turn a markdown phase plan into a workstream bundle",
        description="Week headings become chained workstreams, numbered tasks become steps, "
        "deliverable checkboxes with `paths` become the files those steps create.",
    )
    parser.add_argument("plan", metavar="PLAN.md", help="the markdown plan")
    parser.add_argument(
        "-o", "--output", metavar="BUNDLE", help="*.json or *.yaml (default: stdout)"
    )
    parser.add_argument(
        "--heading-pattern",
        default=DEFAULT_HEADING_PATTERN,
        metavar="REGEX",
        help="headings that start a workstream; groups (?P<num>) and (?P<title>) are used "
        "when present (default: 'Week N: Title')",
    )
    parser.add_argument("--tool", help="default tool_profile_id of every step (e.g. aider)")
    parser.add_argument("--bundle-id", help="bundle id (default: from the file name)")
    parser.set_defaults(handler=run_convert)
