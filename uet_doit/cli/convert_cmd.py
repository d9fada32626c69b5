"""`uet convert PLAN`: a plan (markdown, a known dialect, a folder of task files) becomes a
bundle. plans.dialect_convert reads the dialects, plans.convert markdown, plans.ai_draft asks
an AI tool; this module reads the command line and prints what they return."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from uet_doit.cli import render
from uet_doit.cli.parsing import Subcommands
from uet_doit.cli.plan_cmds import emit_bundle
from uet_doit.errors import EXIT_OK, UsageError


def register(sub: Subcommands) -> None:
    parser = sub.add_parser(
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
        "--max-cost-usd",
        type=float,
        metavar="USD",
        help="with --with: what the drafting calls may cost, as a budget of the draft step "
        "(every draft of this bundle id counts, until `uet cost reset`): a call that would "
        "go over is not made",
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
    parser.set_defaults(handler=convert)


def _check_dollars(value: float | None) -> None:
    """A budget is a finite amount of zero or more (NaN or inf would switch it off)."""
    if value is not None and (not math.isfinite(value) or value < 0):
        msg = f"--max-cost-usd {value}: not a finite amount of dollars, zero or more"
        raise UsageError(msg, "e.g. --max-cost-usd 0.50")


def convert(args: argparse.Namespace) -> int:
    from uet_doit.plans.convert import convert_plan, read_plan_file  # lazy: start-up time
    from uet_doit.plans.dialect_convert import reads_as_dialect  # lazy: start-up time
    from uet_doit.plans.plan_limits import check_plan_file  # lazy: start-up time

    check_plan_file(Path(args.plan))
    # spec-kit, Task Master, Beads, ...: read as their format says
    markdown_options = bool(args.unit_pattern or args.heading_pattern or args.tasks_section)
    path, with_tool = Path(args.plan), bool(args.with_tool)
    if reads_as_dialect(path, args.dialect, markdown_options=markdown_options, with_tool=with_tool):
        return _convert_dialect(args)
    text = read_plan_file(args.plan)
    if args.heading_pattern and args.unit_pattern:
        raise UsageError("--heading-pattern is the old name of --unit-pattern: give one of them")
    options = {
        "source": args.plan,
        "unit_pattern": args.unit_pattern or args.heading_pattern,
        "tasks_section": args.tasks_section,
        "tool": args.tool,
        "bundle_id": args.bundle_id,
    }
    _check_dollars(args.max_cost_usd)
    if args.with_tool and not args.explain:
        from uet_doit.plans.drafting.draft import DraftRequest, draft_bundle  # lazy: start-up time

        request = DraftRequest(
            ai_tool=args.with_tool,
            plan_text=text,
            output=args.output,
            max_fix_attempts=args.max_fix_attempts,
            allow_commands=args.allow_commands,
            max_cost_usd=args.max_cost_usd,
            **options,
        )
        drafted = draft_bundle(request, Path.cwd())
        bundle, warnings = drafted.bundle, drafted.notes
    else:
        conversion = convert_plan(text, **options)
        if args.explain:
            print("\n".join(render.convert_explained(conversion, args.plan)))
            return EXIT_OK
        bundle, warnings = conversion.bundle, conversion.warnings
    emit_bundle(bundle, args.output)
    lines = render.bundle_summary(bundle) + [f"warning: {w}" for w in warnings]
    print("\n".join(lines + ([f"wrote {args.output}"] if args.output else [])), file=sys.stderr)
    return EXIT_OK


def _convert_dialect(args: argparse.Namespace) -> int:
    """A plan in a known dialect (or a folder of task files)."""
    from uet_doit.plans.dialect_convert import convert_dialect  # lazy: start-up time

    if args.update and not args.output:
        raise UsageError("--update needs -o BUNDLE: the bundle an earlier convert wrote")
    done = convert_dialect(
        Path(args.plan),
        dialect=args.dialect,
        tool=args.tool,
        bundle_id=args.bundle_id,
        update=args.output if args.update else None,
    )
    if args.explain:
        print("\n".join(render.dialect_explained(done)))
        return EXIT_OK
    emit_bundle(done.bundle, args.output)
    lines = render.bundle_summary(done.bundle) + [f"warning: {w}" for w in done.warnings]
    skipped = sum(1 for ws in done.bundle["workstreams"] for s in ws["steps"] if s.get("skip"))
    head = f"read as {done.detected.title} ({done.detected.reason})"
    if skipped:
        head += f"; {skipped} step(s) already done or cancelled are kept with `skip`"
    wrote = [f"wrote {args.output}"] if args.output else []
    print("\n".join([head, *lines, *wrote]), file=sys.stderr)
    return EXIT_OK
