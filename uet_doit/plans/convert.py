"""`uet convert PLAN.md`: a markdown plan becomes a bundle, the same way every time.

The plan is read through markdown-it's syntax tree (plan_reading), never with regexes over the
raw text, so headings and checkboxes inside code fences are never taken for plan content.
Units of work become chained workstreams, their tasks steps, their deliverables the files
those steps create; every workstream and step says where it came from (`x-source`; a step
also the item `uet run --sync-plan` ticks, `metadata.source_item`), and
`--explain` shows the tree with the line and the rule of each item and what was left out
(cli/convert_cmd.py parses the command, cli/render.py writes the tree).
`--with TOOL` asks an AI tool for the bundle instead, checked like `uet validate` (ai_draft).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from uet_doit.bundle import checks
from uet_doit.bundle.checks import PathChecker
from uet_doit.bundle.fields import ID_PATTERN
from uet_doit.bundle.model import Bundle
from uet_doit.errors import BundleError, Problem, UetError, UsageError
from uet_doit.plans.plan_bundle import PlanSource, Trace, assemble, notes
from uet_doit.plans.plan_limits import check_plan_text
from uet_doit.plans.plan_markdown import slug
from uet_doit.plans.plan_reading import Plan, read_plan
from uet_doit.plans.plan_text import unbox
from uet_doit.tools.routing import default_known_tools

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
    # lines as markdown-it numbers them (`\r\n` and a lone `\r` end a line)
    lines = re.split(r"\r\n?|\n", text)
    given = PlanSource(Path(source).as_posix(), lines, unbox("\n".join(lines))[1])
    built = assemble(plan.reading.units, name, PathChecker(project), given)
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


def check_bundle(data: dict[str, Any], source: str, root: Path | None = None) -> Bundle:
    """Check a bundle we made against the model and, given `root`, exactly as `uet validate`
    will there, so convert never writes one it refuses; a failure lists every field at fault."""
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


def read_plan_file(plan: str) -> str:
    """The text of a markdown plan (a BOM dropped); UsageError when it cannot be read."""
    try:
        return Path(plan).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {plan}: {exc}", "check the path") from exc


def bundle_text(data: dict[str, Any], output: str | None = None) -> str:
    """The bundle as the file `output` holds it: YAML for *.yaml / *.yml, JSON (indent 2)
    for *.json and for stdout (None); UsageError for any other name."""
    suffix = Path(output).suffix.lower() if output is not None else ".json"
    if suffix in (".yaml", ".yml"):
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
    if suffix == ".json":
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    raise UsageError(f"cannot tell the format of {output}", "name it *.json, *.yaml or *.yml")


def write_bundle(data: dict[str, Any], output: str) -> None:
    """Write the bundle to `output` in the format its name says, making its folder."""
    text = bundle_text(data, output)
    path = Path(output)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UetError(f"cannot write {output}: {exc.strerror}") from exc
