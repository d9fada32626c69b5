"""Commands that read a bundle and run nothing: validate, list, schema, graph, route."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from uet_doit.cli import render
from uet_doit.cli.parsing import Subcommands, add_command
from uet_doit.errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, BundleError

BUNDLE_HELP = "the workstream bundle (.json, .yaml or .yml)"


def register(sub: Subcommands) -> None:
    p = add_command(sub, "validate", "check bundles; exit 3 listing every problem")
    p.add_argument("files", nargs="+", metavar="FILE", help="bundle files to check")
    p.add_argument(
        "--json",
        action="store_true",
        help="print each file's problems and warnings as JSON (all of them: the text lists "
        "the first 50)",
    )
    p.set_defaults(handler=validate)

    p = add_command(sub, "list", "steps with workstream, tool and up-to-date state")
    p.add_argument("bundle", metavar="FILE", help=BUNDLE_HELP)
    p.add_argument("--json", action="store_true", help="print the steps as a JSON list")
    p.set_defaults(handler=list_steps)

    p = add_command(sub, "schema", "print the bundle JSON Schema")
    p.set_defaults(handler=schema)

    p = add_command(sub, "graph", "print the step graph as DOT or Mermaid")
    p.add_argument("bundle", metavar="FILE", help=BUNDLE_HELP)
    p.add_argument(
        "--format",
        choices=("dot", "mermaid"),
        default="dot",
        help="dot (Graphviz) or mermaid (Markdown diagrams); default: dot",
    )
    p.add_argument(
        "--no-critical-path",
        dest="critical_path",
        action="store_false",
        help="do not mark the critical path from past durations",
    )
    p.set_defaults(handler=graph)

    p = add_command(sub, "route", "show the tool each step of a bundle would use, and why")
    p.add_argument("bundle", type=Path, metavar="FILE", help=BUNDLE_HELP)
    p.add_argument(
        "--root",
        type=Path,
        default=None,
        help="project root holding router_config.json (default: the current directory)",
    )
    p.set_defaults(handler=route)


def validate(args: argparse.Namespace) -> int:
    """Every problem of every file (exit 3); inputs nothing provides are warnings (exit 0)."""
    from uet_doit.bundle.loader import collector_paused  # lazy: start-up time

    # a one-shot command: the loaded bundles' objects need no cyclic collection before exit
    with collector_paused():
        return _validate(args.files, args.json)


def _validate(files: list[str], as_json: bool) -> int:
    from uet_doit.bundle.checks import missing_inputs  # lazy: start-up time
    from uet_doit.bundle.loader import load_bundle  # lazy: start-up time
    from uet_doit.tools.routing import default_known_tools  # lazy: start-up time

    failures: list[BundleError] = []
    results: list[dict[str, Any]] = []
    root = Path.cwd()
    for name in files:
        try:
            bundle = load_bundle(Path(name), root, known_tools=default_known_tools())
        except BundleError as exc:
            failures.append(exc)
            results.append(render.validation_result(name, exc.problems))
            continue
        missing = missing_inputs(bundle, root)
        if as_json:
            results.append(render.validation_result(name, [], bundle, missing))
            continue
        print(render.validated(str(Path(name)), bundle))
        if missing:
            print(render.missing_inputs(str(Path(name)), missing), file=sys.stderr)
    if as_json:
        print(json.dumps(results, indent=2, ensure_ascii=False))
    else:
        for failure in failures:
            print(failure.render(), file=sys.stderr)
    return EXIT_USAGE if failures else EXIT_OK


def task_rows(bundle: Any, root: Path) -> list[dict[str, str]]:
    """Each step as `uet list` shows it: its doit task name, workstream, tool and state."""
    from uet_doit.bundle.effective import effective_tool  # lazy: start-up time
    from uet_doit.run.doit.loader import task_status  # lazy: start-up time
    from uet_doit.run.scheduling import plan_schedule  # lazy: start-up time

    sched = plan_schedule(bundle)
    status = task_status(bundle, root, schedule=sched)
    words = {"up-to-date": "up to date", "run": "to run", "error": "missing input"}
    return [
        {
            "task": f"{bundle.task_basename}:{step.step_id}",
            "step_id": step.step_id,
            "ws_id": ws.ws_id,
            "tool": effective_tool(bundle, ws, step),
            "status": words[status.get(step.step_id, "run")],
            "name": step.title,
            "runs": sched[step.step_id].runs,
        }
        for ws, step in bundle.steps()
    ]


def list_steps(args: argparse.Namespace) -> int:
    from uet_doit.bundle.loader import load_bundle  # lazy: start-up time
    from uet_doit.state.rows import state_dir  # lazy: start-up time
    from uet_doit.tools.routing import default_known_tools  # lazy: start-up time

    root = Path.cwd()
    # in a project that has run, a text checked here before is not checked again (as for
    # `uet run`); `.uet/` is never made just to list
    bundle = load_bundle(
        Path(args.bundle),
        root,
        known_tools=default_known_tools(),
        remember=state_dir(root).is_dir(),
    )
    text = render.task_table(task_rows(bundle, root), args.json)
    if text:
        print(text)
    return EXIT_OK


def schema(args: argparse.Namespace) -> int:
    from uet_doit.bundle.schema import schema_text  # lazy: start-up time

    sys.stdout.write(schema_text())
    return EXIT_OK


def graph(args: argparse.Namespace) -> int:
    from uet_doit.bundle.loader import load_bundle  # lazy: start-up time
    from uet_doit.observe.graph_export import graph_text  # lazy: start-up time
    from uet_doit.state.store import RunStore  # lazy: start-up time
    from uet_doit.tools.routing import default_known_tools  # lazy: start-up time

    root = Path.cwd()
    bundle = load_bundle(Path(args.bundle), root, known_tools=default_known_tools())
    durations: dict[str, float] = {}
    store = RunStore(root)
    if args.critical_path and store.path.exists():  # never create .uet just to draw a graph
        durations = store.durations(bundle.bundle_id)
    sys.stdout.write(graph_text(bundle, args.format, durations))
    return EXIT_OK


def route(args: argparse.Namespace) -> int:
    """Exit 1 when a step has no tool it could run with here."""
    from uet_doit.bundle.loader import load_bundle  # lazy: start-up time
    from uet_doit.tools.routing import (  # lazy: start-up time
        availability,
        known_tools,
        load_router_config,
        route_bundle,
    )

    root = (args.root or Path.cwd()).resolve()
    config = load_router_config(root)
    bundle = load_bundle(args.bundle, root, known_tools=known_tools(config))
    table = route_bundle(bundle, config, availability(config, root))
    print(render.routes(table))
    return EXIT_OK if all(r.available for r in table) else EXIT_FAILED
