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
from pathlib import Path
from typing import Any

import yaml
from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode
from pydantic import ValidationError

from uet_doit.bundle.model import ID_PATTERN, Bundle
from uet_doit.errors import BundleError, Problem, UetError, UsageError
from uet_doit.plans.plan_markdown import (
    _EXTENSION,
    _Deliverable,
    _sections,
    _Task,
    _Week,
    _weeks,
    slug,
)

DEFAULT_HEADING_PATTERN = r"(?i)^week\s+(?P<num>\d+)(\s*:|\s+[-\u2013\u2014])\s*(?P<title>.+)$"


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
