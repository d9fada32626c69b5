"""A plan read by a dialect -> bundle data: ids, dependency edges, done items, files.

Edges come from what the plan says (explicit ids, ranges, `Dependencies` prose, mermaid) and,
in dialects whose order means sequence, from that order: an item follows the one before it in
its group, a `[P]` item follows only what its run of `[P]` siblings follows. An edge that would
close a cycle (a plan that contradicts itself) is dropped with a warning, so the bundle is
always runnable.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from uet_doit.bundle.checks import PathChecker
from uet_doit.bundle.graph import build_graph
from uet_doit.bundle.model import Bundle
from uet_doit.plans.dialects.files import verify_argv
from uet_doit.plans.dialects.model import SKIPPED, Group, Item, PlanDoc, sanitise
from uet_doit.plans.plan_bundle import unique


@dataclass
class Trace:
    """One line of `uet convert --explain`: where in the plan, what it became, by which rule."""

    where: str
    depth: int
    what: str
    text: str
    rule: str


@dataclass
class Built:
    workstreams: list[dict[str, Any]] = field(default_factory=list)
    traces: list[Trace] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _ids(doc: PlanDoc, keep: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """Bundle ids of groups and items; `keep` (source key -> id, from `--update`) first."""
    used: set[str] = set()
    groups: dict[str, str] = {}
    items: dict[str, str] = {}
    seen: set[str] = set()
    for group in doc.groups:
        for item in group.items:
            if item.key in seen:  # a plan that repeats an id: the first keeps it
                doc.warnings.append(f"{item.where}: id {item.key!r} is used twice; renamed")
                item.key = unique(item.key, seen)
            seen.add(item.key)
            wanted = keep.get(f"item:{item.key}") or sanitise(item.key)
            items[item.key] = unique(wanted, used)
    taken: set[str] = set()
    for group in doc.groups:
        if group.key in taken:  # `11.` twice: the second is a group of its own
            doc.warnings.append(f"{group.where}: id {group.key!r} is used twice; renamed")
            group.key = unique(group.key, taken)
        taken.add(group.key)
        wanted = keep.get(f"group:{group.key}") or sanitise(group.key)
        groups[group.key] = unique(wanted, used)
    return groups, items


def _chain(group: Group) -> dict[str, list[str]]:
    """Order edges inside a group: each item after the one before; a run of `[P]` items all
    after what the run follows, and the next plain item after the whole run."""
    edges: dict[str, list[str]] = {}
    prev: list[str] = []
    run: list[str] = []
    for item in group.items:
        if item.parallel:
            edges[item.key] = list(prev)
            run.append(item.key)
        else:
            edges[item.key] = run or list(prev)
            prev, run = [item.key], []
    return edges


def _resolve(
    keys: list[str],
    groups: dict[str, str],
    items: dict[str, str],
    own: str,
    warnings: list[str],
    where: str,
) -> list[str]:
    out: list[str] = []
    for key in keys:
        target = items.get(key) or groups.get(key)
        if target is None:
            warnings.append(f"{where}: depends on {key!r}, which is not in this plan; left out")
        elif target != own:
            out.append(target)
    return list(dict.fromkeys(out))


def _allowed(paths: list[str], item: Item, checker: PathChecker, out: Built) -> list[str]:
    """The paths `uet validate` accepts (the validator's own rule); the others are left out,
    with a warning."""
    kept, refused = checker.partition(paths)
    out.warnings += [f"{item.title[:60]}: {why}: left out" for _, why in refused]
    return kept


def build(doc: PlanDoc, keep: dict[str, str] | None = None) -> Built:
    """Workstreams in plan order, with every edge the plan gives, and --explain traces."""
    out = Built()
    checker = PathChecker(Path.cwd())  # the project convert writes for: the current folder
    group_ids, item_ids = _ids(doc, keep or {})
    created: dict[str, str] = {}
    previous: str | None = None
    for group in doc.groups:
        ws_id = group_ids[group.key]
        chain = _chain(group) if doc.chain_items else {}
        entry_deps: list[str] = []
        ws_deps: list[str] = []
        if group.depends is None:
            ws_deps = [previous] if doc.chain_groups and previous else []
        else:
            for key in group.depends:
                if key in item_ids:
                    entry_deps.append(item_ids[key])
                elif key in group_ids and group_ids[key] != ws_id:
                    ws_deps.append(group_ids[key])
                elif key not in group_ids:
                    out.warnings.append(
                        f"{group.where}: depends on {key!r}, which is not in this plan; left out"
                    )
        out.traces.append(
            Trace(group.where, 0, "workstream", f"{ws_id}: {group.title}", group.rule)
        )
        for dep in dict.fromkeys(ws_deps):
            out.traces.append(Trace(group.where, 1, "after", dep, "workstream dependency"))
        steps = []
        for item in group.items:
            step_id = item_ids[item.key]
            deps = _resolve(
                chain.get(item.key, []) + item.depends,
                group_ids,
                item_ids,
                step_id,
                out.warnings,
                item.where,
            )
            if not any(d in item_ids.values() and _in(group, d, item_ids) for d in deps):
                deps = list(dict.fromkeys([*entry_deps, *deps]))
            steps.append(
                _step(item, step_id, deps, created, checker, out, _context(doc, group, item))
            )
        ws: dict[str, Any] = {"ws_id": ws_id, "name": group.title[:200] or ws_id}
        if group.description:
            ws["description"] = group.description
        if group.priority:
            ws["priority"] = group.priority
        ws["depends_on"] = list(dict.fromkeys(ws_deps))
        ws["steps"] = steps
        if group.criteria:
            ws["completion_criteria"] = group.criteria
        ws["metadata"] = {"source_id": group.key, **group.metadata}
        ws["x-source"] = f"{group.where} ({group.key})"
        out.workstreams.append(ws)
        previous = ws_id
    return out


def _in(group: Group, step_id: str, item_ids: dict[str, str]) -> bool:
    return any(item_ids[i.key] == step_id for i in group.items)


def _inside(path: str) -> bool:
    """A path a plan gives for the step to change stays in the project: relative, no `..`."""
    parts = path.replace("\\", "/").split("/")
    return (
        bool(path.strip())
        and not path.startswith(("/", "~", "-"))
        and ".." not in parts
        and (":" not in parts[0])
    )


def _context(doc: PlanDoc, group: Group, item: Item) -> list[str]:
    """What a tool needs besides the item's own words (it sees only the instruction): the
    phase or parent it belongs to, and where the plan's design documents are."""
    lines = []
    if group.title and group.title != item.title and (len(group.items) > 1 or group.description):
        part = f"Part of {group.title}" + (f": {group.description}" if group.description else "")
        lines.append(part)
    lines += doc.context
    return ["", "Context:", *(f"- {line}" for line in lines)] if lines else []


def _step(
    item: Item,
    step_id: str,
    deps: list[str],
    created: dict[str, str],
    checker: PathChecker,
    out: Built,
    context_lines: list[str],
) -> dict[str, Any]:
    creates: list[str] = []
    files = _allowed(item.edits, item, checker, out)
    for path in dict.fromkeys(_allowed(item.creates, item, checker, out)):
        if path in created:
            files.append(path)  # made by an earlier step: this one works on it
        else:
            created[path] = step_id
            creates.append(path)
    for path in files:
        created.setdefault(path, "")  # it exists already: a later item naming it works on it
    lines = [item.title, *item.body]
    if item.criteria:
        lines += ["", "Acceptance criteria:", *(f"- {c}" for c in item.criteria)]
    lines += context_lines
    context: dict[str, Any] = {"instruction": "\n".join(lines).strip()}
    files = [p for p in dict.fromkeys(files) if p not in creates]
    if files:
        context["files"] = files
    if creates:
        context["create_files"] = creates
    step: dict[str, Any] = {"step_id": step_id, "name": item.title[:200] or step_id}
    if deps:
        step["depends_on"] = deps
    step["context"] = context
    scope = [p for p in dict.fromkeys(item.scope) if _inside(p)]
    for path in dict.fromkeys(item.scope):
        if not _inside(path):
            out.warnings.append(f"{step_id}: scope {path!r} is outside the project; left out")
    if scope:
        step["scope"] = scope
    argv = verify_argv(item.validation) if item.validation else None
    if argv:
        step["validation"] = {"test_command": argv}  # argv: no shell reads a plan's words
    if item.parallel:
        step["parallel_ok"] = True
    if item.status in SKIPPED:
        step["skip"] = item.status
    metadata: dict[str, Any] = {"source_id": item.key, **item.metadata}
    if item.status:
        metadata["status"] = item.status
    if item.criteria:
        metadata["criteria"] = item.criteria
    if item.sync:
        metadata["source_item"] = item.sync
    step["metadata"] = metadata
    step["x-source"] = f"{item.where} ({item.key})"
    mark = f" [{item.status}]" if item.status else ""
    out.traces.append(
        Trace(item.where, 1, "step", f"{step_id}: {item.title[:70]}{mark}", item.rule)
    )
    for dep in deps:
        out.traces.append(Trace(item.where, 2, "after", dep, "dependency"))
    for path in creates:
        out.traces.append(Trace(item.where, 2, "creates", path, "path named by the item"))
    for path in files:
        out.traces.append(
            Trace(item.where, 2, "reads", path, "edited, or created by an earlier step")
        )
    return step


def settle(bundle: dict[str, Any], warnings: list[str]) -> None:
    """Drop the edges that would close a cycle (the last one the plan gives, an input file
    first), so the bundle always validates; each drop is a warning."""
    from pydantic import ValidationError

    steps = {s["step_id"]: s for ws in bundle["workstreams"] for s in ws["steps"]}
    wss = {ws["ws_id"]: ws for ws in bundle["workstreams"]}
    for _ in range(10_000):
        try:
            graph = build_graph(Bundle.model_validate(bundle))
        except ValidationError:
            return  # reported by the caller's check, field by field
        cycle = graph.find_cycle()
        if not cycle:
            return
        pairs = list(itertools.pairwise(cycle))
        implied = [(n, d) for n, d in pairs if d in graph.implied.get(n, [])]
        for node, dep in [*implied, *reversed(pairs)]:
            if _cut(node, dep, steps, wss, graph.implied.get(node, []), warnings):
                break
        else:
            return


def _cut(
    node: str,
    dep: str,
    steps: dict[str, dict[str, Any]],
    wss: dict[str, dict[str, Any]],
    implied: list[str],
    warnings: list[str],
) -> bool:
    if node in steps and dep in implied:
        made = set(steps[dep]["context"].get("create_files", []))
        context = steps[node]["context"]
        context["files"] = [p for p in context.get("files", []) if p not in made]
        if not context["files"]:
            del context["files"]
        warnings.append(f"{node}: inputs made by {dep} dropped: {dep} comes after it")
        return True
    for table in (steps, wss):
        deps = table.get(node, {}).get("depends_on", [])
        if dep in deps:
            deps.remove(dep)
            warnings.append(f"{node}: dependency on {dep} dropped: it would close a cycle")
            return True
    ws = next((w for w in wss.values() if node in {s["step_id"] for s in w["steps"]}), None)
    if ws is not None and dep in ws.get("depends_on", []):
        ws["depends_on"].remove(dep)
        warnings.append(f"{ws['ws_id']}: dependency on {dep} dropped: it would close a cycle")
        return True
    return False
