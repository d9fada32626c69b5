"""Units of a plan -> bundle data: ids, steps, files, dependencies, and where each came from.

Order gives dependencies (each unit after the one before it); explicit phrases ("depends on
WS-01", "after Phase 02", "requires M2", "Dependencies: WS-12, WS-13") replace that with what
they name. Only earlier units and steps can be named, so a converted plan never has a cycle.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from uet_doit.bundle.checks import PathChecker
from uet_doit.plans.plan_markdown import EDIT, EXTENSION, MARKS, Deliverable, Task, slug
from uet_doit.plans.plan_units import Unit, ref_key

_DEP_PHRASE = re.compile(
    r"(?i)\b(depends?\s+on|dependenc(?:y|ies)|after|requires?|blocked\s+by|prerequisites?"
    r"|builds?\s+on|follows)\b(?P<rest>[^\n.;]*)"
)
_REF = re.compile(
    r"(?i)\b(?P<kind>weeks?|phases?|milestones?|stages?|sprints?|iterations?|epics?"
    r"|workstreams?|ws|ph|m)[\s\-_#]?(?P<num>\d+(?:\.\d+)*)(?![\w.])"
    r"|\b(?P<code>[A-Z]{1,4})-(?P<cnum>\d+(?:\.\d+)*)(?![\w.])"
)
_PREFIX = {"week": "w", "phase": "p", "milestone": "m", "sprint": "s", "stage": "st"}
_PREFIX |= {"iteration": "i", "epic": "e", "workstream": "ws"}
#: a list item with a box `--sync-plan` can tick (the marks plans use for "not done yet")
_BOX_LINE = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+\[[ xX\-~/]\]")


@dataclass
class Trace:
    """One line of `uet convert --explain`."""

    line: int
    depth: int
    what: str
    text: str
    rule: str


@dataclass
class Assembly:
    workstreams: list[dict[str, Any]] = field(default_factory=list)
    traces: list[Trace] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def refs_in(text: str) -> list[tuple[str, str]]:
    """The units a dependency phrase names: `after Phase 02` -> [("phase", "2")]."""
    found: list[tuple[str, str]] = []
    for phrase in _DEP_PHRASE.finditer(text):
        for m in _REF.finditer(phrase.group("rest")):
            kind = m.group("kind") or m.group("code")
            num = m.group("num") or m.group("cnum")
            kind = kind.lower()
            if len(kind) > 2 and kind.endswith("s"):
                kind = kind[:-1]
            found.append(ref_key(kind, num))
    return list(dict.fromkeys(found))


def _prefix(unit: Unit, index: int) -> str:
    if unit.kind and unit.num:
        return _PREFIX.get(unit.kind, unit.kind) + unit.num
    return f"u{index}"


def _match_score(deliverable: Deliverable, task: Task) -> int:
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


def place(unit: Unit, warnings: list[str], prefix: str) -> list[Task]:
    """Give each deliverable to the task it belongs to, else to a step of its own."""
    tasks = list(unit.tasks)
    for task in tasks:
        if task.rule.startswith(("task heading", "sub-heading")):
            continue  # their paths were read from their `Files:` lines and lists
        edit = bool(EDIT.match(task.name))
        for path in task.paths:
            if path.endswith("/"):
                continue
            if edit:
                task.edits.append(path)  # `Update a.yaml`: an input, whatever else is listed
            elif not unit.deliverables:  # none listed: the files the tasks name are theirs
                task.creates.append(path)
    for deliverable in unit.deliverables:
        scored = [(_match_score(deliverable, task), -i, task) for i, task in enumerate(tasks)]
        best = max(scored, key=lambda s: (s[0], s[1]), default=None)
        if best and best[0] > 0:
            task = best[2]
            how = "by path" if best[0] >= 500 else "by shared words"
        else:
            text = deliverable.text.replace("`", "")
            task = Task(
                text, [], deliverable.paths, set(), None, deliverable.line, deliverable.rule
            )
            task.done = deliverable.done
            tasks.append(task)
            how = "as a step of its own (no task matches it)"
        task.deliverables.append(deliverable.text)
        task.placed.append((deliverable, how))
        for path in deliverable.paths:
            bare = [p for p in task.paths if "/" not in p and EXTENSION.search(p)]
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


@dataclass
class PlanSource:
    """The plan as `uet convert` was given it: the path `--sync-plan` writes back to, and its
    lines (numbered as markdown-it numbers them) to record what each item said."""

    file: str
    lines: list[str]
    boxed: bool = False  # a terminal paste (`│ - [ ] x │`): no box `--sync-plan` can tick

    def item(self, task: Task) -> dict[str, Any]:
        """Where `--sync-plan` ticks a landed step: its own checkbox and those of the
        deliverables placed in it, in the dialects' `source_item` shape; a heading or a
        plain item has no box, so it is recorded to be reported, never written."""
        if self.boxed:
            return {
                "kind": "unmarked",
                "file": self.file,
                "line": task.line,
                "why": "a terminal paste",
            }
        spots = [task.line, *(d.line for d, _ in task.placed)]
        boxes = [n for n in dict.fromkeys(spots) if self._boxed(n)]
        if not boxes:
            text = self._text(task.line)
            why = "a heading" if text.lstrip().startswith("#") else "no checkbox"
            return {
                "kind": "unmarked",
                "file": self.file,
                "line": task.line,
                "text": text,
                "why": why,
            }
        if len(boxes) == 1:
            n = boxes[0]
            return {"kind": "checkbox", "file": self.file, "line": n, "text": self._text(n)}
        texts = [self._text(n) for n in boxes]
        return {"kind": "checkboxes", "file": self.file, "lines": boxes, "texts": texts}

    def _text(self, number: int) -> str:
        return self.lines[number - 1] if 0 < number <= len(self.lines) else ""

    def _boxed(self, number: int) -> bool:
        return bool(_BOX_LINE.match(self._text(number)))


def _step(
    task: Task,
    step_id: str,
    created: dict[str, str],
    reads: list[str],
    warnings: list[str],
    source: str,
    plan: PlanSource | None = None,
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
    files = [p for p in dict.fromkeys([*edits, *reads]) if p not in creates]
    if files:
        context["files"] = files
    if creates:
        context["create_files"] = creates
    step: dict[str, Any] = {"step_id": step_id, "name": task.name[:200], "context": context}
    step["x-source"] = f"{source}:{task.line}"
    if task.done:
        step["skip"] = "done"  # ticked in the plan: kept, shown as skipped, not run again
    metadata: dict[str, Any] = {}
    if task.section:
        metadata["section"] = task.section
    if task.output_dirs:
        metadata["output_dirs"] = task.output_dirs
    if plan is not None:
        metadata["source_item"] = plan.item(task)
    if metadata:
        step["metadata"] = metadata
    return step


def notes(found: list[tuple[int, str]], source: str) -> list[dict[str, str]]:
    """Sections that are not work (Risks, Goals, ...), by title and place: the plan keeps
    their text, x-source says where."""
    return [{"title": title, "x-source": f"{source}:{line}"} for line, title in found]


def unique(candidate: str, used: set[str]) -> str:
    result, n = candidate, 2
    while result in used:
        result, n = f"{candidate}-{n}", n + 1
    used.add(result)
    return result


def _allowed(
    paths: list[str], checker: PathChecker, line_of: dict[str, int], line: int, out: Assembly
) -> list[str]:
    """The paths `uet validate` accepts (the validator's own rule); the others are left out,
    said by --explain and a warning."""
    kept, refused = checker.partition(paths)
    for path, why in refused:
        at = line_of.get(path, line)
        out.traces.append(Trace(at, 0, "skipped", path, why))
        out.warnings.append(f"line {at}: {why}: left out")
    return kept


def assemble(
    units: list[Unit], source: str, checker: PathChecker, plan: PlanSource | None = None
) -> Assembly:
    """Workstreams (dicts in bundle order) with x-source, dependencies and --explain traces;
    given the plan's lines, each step records the item `--sync-plan` ticks."""
    out = Assembly()
    created: dict[str, str] = {}
    used: set[str] = set()
    unit_ids: dict[tuple[str, str], str] = {}
    step_ids: dict[tuple[str, str], tuple[str, str]] = {}  # key -> (step id, ws id)
    for index, unit in enumerate(units, start=1):
        prefix = _prefix(unit, index)
        title = MARKS.sub("", unit.title) or unit.title  # `(deferred)` is a note, not a name
        ws_id = unique(f"{prefix}-{slug(title)}", used)
        out.traces.append(Trace(unit.line, 0, "workstream", f"{ws_id}: {unit.name}", unit.rule))
        tasks = place(unit, out.warnings, ws_id)
        reads = _allowed(unit.reads, checker, {}, unit.line, out)
        if not tasks:
            out.warnings.append(f"{ws_id}: no tasks or deliverables found; one step does it all")
            task = Task(unit.name, [unit.raw or unit.description or ""], [], set(), None)
            task.line, task.rule = unit.line, "the unit itself (it lists no tasks)"
            tasks = [task]
        steps = []
        for i, task in enumerate(tasks, start=1):
            step_id = unique(f"{prefix}-{i:02d}-{slug(task.name, 32)}", used)
            lines = {p: d.line for d, _ in task.placed for p in d.paths if d.line}
            task.creates = _allowed(task.creates, checker, lines, task.line, out)
            task.edits = _allowed(task.edits, checker, lines, task.line, out)
            step = _step(task, step_id, created, reads, out.warnings, source, plan)
            deps = _step_deps(task, step_ids, ws_id)
            if deps:
                step["depends_on"] = deps
            steps.append(step)
            out.traces.append(Trace(task.line, 1, "step", f"{step_id}: {task.name}", task.rule))
            _trace_files(out, task, step)
            if task.key:
                step_ids.setdefault(task.key, (step_id, ws_id))
        ws: dict[str, Any] = {"ws_id": ws_id, "name": unit.name[:200]}
        if unit.description:
            ws["description"] = unit.description
        if unit.priority:
            ws["priority"] = unit.priority
        ws["depends_on"] = _unit_deps(unit, unit_ids, step_ids, out.workstreams)
        ws["steps"] = steps
        if unit.criteria:
            ws["completion_criteria"] = unit.criteria
            for c in unit.criteria:
                out.traces.append(Trace(unit.line, 1, "criterion", c, "completion criteria"))
        ws["metadata"] = {"heading": unit.name, "line": unit.line}
        if unit.marks:
            ws["metadata"]["marks"] = unit.marks
        if unit.notes:
            ws["metadata"]["notes"] = notes(unit.notes, source)
        ws["x-source"] = f"{source}:{unit.line}"
        if unit.key:
            unit_ids.setdefault(unit.key, ws_id)
        out.workstreams.append(ws)
    _drop_forward_inputs(out, created)
    return out


def _trace_files(out: Assembly, task: Task, step: dict[str, Any]) -> None:
    placed = {p: (d, how) for d, how in task.placed for p in d.paths}
    for path in step["context"].get("create_files", []):
        d, how = placed.get(path, (None, ""))
        line = d.line if d else task.line
        own = "named under the heading (Files:, a deliverables list or a snippet)"
        named = own if task.rule.startswith(("sub-heading", "task heading")) else None
        rule = f"{d.rule}, placed {how}" if d else named or "path named by the task"
        out.traces.append(Trace(line, 2, "creates", path, rule))
    for path in step["context"].get("files", []):
        d, how = placed.get(path, (None, ""))
        rule = f"{d.rule}, an edit" if d else "input (edited, read-only or created before)"
        out.traces.append(Trace(d.line if d else task.line, 2, "reads", path, rule))


def _step_deps(
    task: Task, step_ids: dict[tuple[str, str], tuple[str, str]], ws_id: str
) -> list[str]:
    deps = []
    for key in refs_in(task.text):
        if key in step_ids and key != task.key:
            deps.append(step_ids[key][0])
    return list(dict.fromkeys(deps))


def _unit_deps(
    unit: Unit,
    unit_ids: dict[tuple[str, str], str],
    step_ids: dict[tuple[str, str], tuple[str, str]],
    earlier: list[dict[str, Any]],
) -> list[str]:
    named = []
    for key in refs_in(unit.text):
        if key in unit_ids and key != unit.key:
            named.append(unit_ids[key])
        elif key in step_ids:
            named.append(step_ids[key][1])
    if named:
        return list(dict.fromkeys(named))
    return [earlier[-1]["ws_id"]] if earlier else []


def _drop_forward_inputs(out: Assembly, created: dict[str, str]) -> None:
    """An input that a later step creates would make the earlier step wait for the later one
    (and its workstream): keep it in the instruction only."""
    order: dict[str, int] = {}
    for ws in out.workstreams:
        for step in ws["steps"]:
            order[step["step_id"]] = len(order)
    for ws in out.workstreams:
        for step in ws["steps"]:
            files = step["context"].get("files", [])
            late = [p for p in files if p in created and order[created[p]] > order[step["step_id"]]]
            if not late:
                continue
            step["context"]["files"] = [p for p in files if p not in late]
            if not step["context"]["files"]:
                del step["context"]["files"]
            for path in late:
                out.warnings.append(
                    f"{step['step_id']}: `{path}` is created later by {created[path]}; "
                    "not listed as an input"
                )
