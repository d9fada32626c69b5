"""`uet convert PLAN.md`: a markdown plan becomes a bundle, the same way every time.

The plan is read through markdown-it's syntax tree (plan_reading), never with regexes over the
raw text, so headings and checkboxes inside code fences are never taken for plan content.
Units of work become chained workstreams, their tasks steps, their deliverables the files
those steps create; every workstream and step says where it came from (`x-source`), and
`--explain` prints the tree with the line and the rule of each item and what was left out.
`--with TOOL` asks an AI tool for the bundle instead, checked like `uet validate` (ai_draft).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from uet_doit.bundle.checks import PathChecker
from uet_doit.bundle.fields import ID_PATTERN
from uet_doit.bundle.model import Bundle
from uet_doit.errors import BundleError, Problem, UetError, UsageError
from uet_doit.plans.plan_bundle import Trace, assemble, notes
from uet_doit.plans.plan_limits import check_plan_file, check_plan_text
from uet_doit.plans.plan_markdown import slug
from uet_doit.plans.plan_reading import Plan, read_plan

#: the only shape the first version knew; `--heading-pattern` is now `--unit-pattern`
DEFAULT_HEADING_PATTERN = r"(?i)^week\s+(?P<num>\d+)(\s*:|\s+[-\u2013\u2014])\s*(?P<title>.+)$"


@dataclass
class Conversion:
    """The bundle (validated), what could not be placed, and the --explain tree."""

    bundle: dict[str, Any]
    warnings: list[str]
    traces: list[Trace]
    mode: str


def _pattern(unit_pattern: str | None) -> re.Pattern[str] | None:
    if unit_pattern is None:
        return None
    try:
        return re.compile(unit_pattern)
    except re.error as exc:
        raise UsageError(
            f"--unit-pattern {unit_pattern!r} is not a valid regex: {exc}",
            "quote it in the shell, e.g. --unit-pattern '^Phase (?P<num>\\d+): (?P<title>.+)'",
        ) from exc


def _nothing_found(plan: Plan, source: str, pattern: str | None) -> UsageError:
    heads, items = plan.reading.headings, plan.reading.items
    more = "; ..." if len(heads) > 6 else ""
    seen = f"{len(heads)} heading(s) ({'; '.join(heads[:6])}{more})" if heads else "no headings"
    what = f"no units of work found in {source}: it has {seen} and {items} list item(s)"
    if pattern:
        what = f"no headings or lines match --unit-pattern {pattern!r} in {source}: it has {seen}"
    return UsageError(
        what,
        "name the headings that start a unit with --unit-pattern REGEX (e.g. '^Stage \\d+'), "
        "the section that lists the tasks with --tasks-section NAME, or let an AI tool draft "
        "the bundle with --with claude|codex|gemini|aider",
    )


def convert_plan(
    text: str,
    *,
    source: str,
    unit_pattern: str | None = None,
    tasks_section: str | None = None,
    tool: str | None = None,
    bundle_id: str | None = None,
    root: Path | None = None,
) -> Conversion:
    """The bundle made from a plan's text; UsageError (exit 3) when no structure is found.
    Paths `uet validate` would refuse in `root` (default: the cwd) are left out."""
    pattern = _pattern(unit_pattern)
    if bundle_id is not None and not re.match(ID_PATTERN, bundle_id):
        raise UsageError(
            f"--bundle-id {bundle_id!r} is not a valid id", "use letters, digits, '-', '_', '.'"
        )
    check_plan_text(text, source)
    plan = read_plan(text, unit_pattern=pattern, tasks_section=tasks_section)
    if not plan.reading.units:
        raise _nothing_found(plan, source, unit_pattern)
    name = Path(source).name
    project = root or Path.cwd()
    built = assemble(plan.reading.units, name, PathChecker(project))
    stem = Path(source).stem
    bundle: dict[str, Any] = {
        "bundle_id": bundle_id or slug(stem, 60),
        "bundle_name": plan.title or stem,
    }
    if tool:
        bundle["tool_profile_id"] = tool
    bundle["workstreams"] = built.workstreams
    bundle["metadata"] = {"converted_from": name, "recognised_by": plan.reading.mode}
    if plan.reading.notes:
        bundle["metadata"]["notes"] = notes(plan.reading.notes, name)
    check_bundle(bundle, source, project)
    traces = built.traces + [
        Trace(line, 0, "skipped", text, reason) for line, text, reason in plan.reading.skipped
    ]
    return Conversion(bundle, plan.reading.warnings + built.warnings, traces, plan.reading.mode)


def convert_markdown(
    text: str,
    *,
    source: str,
    heading_pattern: str | None = None,
    unit_pattern: str | None = None,
    tasks_section: str | None = None,
    tool: str | None = None,
    bundle_id: str | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """The bundle (validated) made from a plan's text, and what could not be placed."""
    done = convert_plan(
        text,
        source=source,
        unit_pattern=unit_pattern or heading_pattern,
        tasks_section=tasks_section,
        tool=tool,
        bundle_id=bundle_id,
    )
    return done.bundle, done.warnings


def explain(conversion: Conversion, source: str) -> list[str]:
    """The recognised tree, one item a line: `plan.md:35  step  id: name  [rule]`."""
    name = Path(source).name
    lines = [f"{name}: recognised by {conversion.mode}"]
    for t in conversion.traces:
        if t.what == "skipped":
            continue
        where = f"{name}:{t.line}"
        lines.append(f"{where:<{len(name) + 6}} {'  ' * t.depth}{t.what} {t.text}  [{t.rule}]")
    skipped = sorted((t for t in conversion.traces if t.what == "skipped"), key=lambda t: t.line)
    if skipped:
        lines.append("left out:")
        lines += [f"{name}:{t.line:<5} {t.text}  [{t.rule}]" for t in skipped]
    if conversion.warnings:
        lines.append("warnings:")
        lines += [f"  {w}" for w in conversion.warnings]
    return lines


def check_bundle(data: dict[str, Any], source: str, root: Path | None = None) -> Bundle:
    """Check a bundle we made against the model and, given `root`, exactly as `uet validate`
    will there, so convert never writes one it refuses; a failure lists every field at fault."""
    from uet_doit.bundle import checks
    from uet_doit.tools.routing import default_known_tools

    try:
        bundle = Bundle.model_validate(data)
    except ValidationError as exc:
        problems = [
            Problem(source, ".".join(str(p) for p in err["loc"]), err["msg"])
            for err in exc.errors()
        ]
        raise BundleError(problems) from exc
    problems = (
        checks.check_bundle(bundle, data, source, root, default_known_tools())
        if root is not None
        else []
    )
    if problems:
        raise BundleError(problems)
    return bundle


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
        # a draft may spell a step's keys at step level, without `context`
        n = sum(len((s.get("context") or s).get("create_files") or []) for s in ws["steps"])
        steps, files = steps + len(ws["steps"]), files + n
        tag = f" [{ws['priority']}]" if ws.get("priority") else ""
        lines.append(f"  {ws['ws_id']}{tag}: {len(ws['steps'])} steps, {n} files to create")
    total = f"{len(bundle['workstreams'])} workstreams, {steps} steps, {files} files to create"
    return [f"bundle {bundle['bundle_id']}: {total}", *lines]


def run_convert(args: argparse.Namespace) -> int:
    check_plan_file(Path(args.plan))
    from uet_doit.plans.dialect_convert import run_dialect

    code = run_dialect(args)  # spec-kit, Task Master, Beads, ...: read as their format says
    if code is not None:
        return code
    try:
        text = Path(args.plan).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {args.plan}: {exc}", "check the path") from exc
    if args.heading_pattern and args.unit_pattern:
        raise UsageError("--heading-pattern is the old name of --unit-pattern: give one of them")
    options = {
        "source": args.plan,
        "unit_pattern": args.unit_pattern or args.heading_pattern,
        "tasks_section": args.tasks_section,
        "tool": args.tool,
        "bundle_id": args.bundle_id,
    }
    if args.with_tool and not args.explain:
        from uet_doit.plans.ai_draft import DraftRequest, draft_bundle

        request = DraftRequest(
            ai_tool=args.with_tool,
            plan_text=text,
            output=args.output,
            max_fix_attempts=args.max_fix_attempts,
            allow_commands=args.allow_commands,
            **options,
        )
        drafted = draft_bundle(request, Path.cwd())
        bundle, warnings = drafted.bundle, drafted.notes
    else:
        conversion = convert_plan(text, **options)
        if args.explain:
            print("\n".join(explain(conversion, args.plan)))
            return 0
        bundle, warnings = conversion.bundle, conversion.warnings
    write_output(bundle, args.output)
    lines = summary(bundle) + [f"warning: {w}" for w in warnings]
    print("\n".join(lines + ([f"wrote {args.output}"] if args.output else [])), file=sys.stderr)
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "convert",
        help="turn a markdown plan into a workstream bundle",
        description="Units of work (Week/Phase/Milestone/PH-NN/WS-NN headings or lines, else "
        "the tasks section or numbered items) become chained workstreams, their tasks steps, "
        "their deliverable paths the files those steps create. Each workstream and step "
        "carries x-source: PLAN:LINE.",
    )
    parser.add_argument(
        "plan",
        metavar="PLAN",
        help="the plan: markdown, a known dialect (tasks.md, tasks.json, issues.jsonl, ...) "
        "or a folder of one-task-per-file plans",
    )
    parser.add_argument(
        "-o", "--output", metavar="BUNDLE", help="*.json or *.yaml (default: stdout)"
    )
    parser.add_argument(
        "--explain",
        action="store_true",
        help="print what was recognised (line and rule of each item) and what was left out",
    )
    parser.add_argument(
        "--unit-pattern",
        metavar="REGEX",
        help="headings (or lines) that start a workstream; groups (?P<num>) and (?P<title>) "
        "are used when present",
    )
    parser.add_argument("--heading-pattern", metavar="REGEX", help="old name of --unit-pattern")
    parser.add_argument(
        "--tasks-section",
        metavar="NAME",
        help="one workstream from the sections whose title contains NAME (e.g. 'Next actions')",
    )
    parser.add_argument(
        "--with",
        dest="with_tool",
        choices=("claude", "codex", "gemini", "aider"),
        help="let this AI tool draft the bundle; it is checked like `uet validate` and sent "
        "back with the problems until valid",
    )
    parser.add_argument(
        "--max-fix-attempts",
        type=int,
        metavar="N",
        help="with --with: how many times a draft with problems is sent back (default: "
        "max_fix_attempts of the tool in router_config.json, else 2)",
    )
    parser.add_argument(
        "--dialect",
        metavar="NAME",
        help="read the plan as this dialect instead of detecting it: spec-kit, kiro, openspec, "
        "taskmaster, beads, backlog, spec-kitty, cursor, superpowers, conductor, bmad, execplan, "
        "ralph, todo, or markdown (a generic plan); --explain says which was detected and why",
    )
    parser.add_argument(
        "--update",
        action="store_true",
        help="re-convert into the -o bundle, keeping the step ids it gave unchanged items",
    )
    parser.add_argument(
        "--allow-commands",
        action="store_true",
        help="with --with: accept commands, gates, notify, isolation, scope, non-AI tools and "
        "tool options the plan's own conversion does not have (each one is listed)",
    )
    parser.add_argument("--tool", help="default tool_profile_id of every step (e.g. aider)")
    parser.add_argument("--bundle-id", help="bundle id (default: from the file name)")
    parser.set_defaults(handler=run_convert)
