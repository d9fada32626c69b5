"""The task names a run of a bundle accepts, checked before anything is recorded.

`uet run` and `run_bundle` both refuse a TASK the bundle does not have (or that the run
skips) here, so a typo spends no run id and prints no resume hint.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

from uet_doit.bundle.graph import build_graph, dependents_of
from uet_doit.bundle.model import Bundle
from uet_doit.errors import UsageError


def task_names(bundle: Bundle, skipped: frozenset[str] = frozenset()) -> dict[str, bool]:
    """Every name `uet run` accepts for a bundle (without the `BASE:` prefix), each with
    whether this run has it: a workstream whose steps are all skipped is left out, with its
    gates, as the compiler leaves it out of doit's tasks; a workstream without steps is none."""
    from uet_doit.run.step_spec import gate_task_name  # lazy: start-up time

    names = {bundle.task_basename: True}
    for ws in bundle.workstreams:
        if not ws.steps:
            continue
        kept = any(step.step_id not in skipped for step in ws.steps)
        names.update({step.step_id: step.step_id not in skipped for step in ws.steps})
        names.update({gate_task_name(ws.ws_id, i, g): kept for i, g in enumerate(ws.test_gates)})
        names[ws.ws_id] = kept
    names.update({gate_task_name("bundle", i, g): True for i, g in enumerate(bundle.test_gates)})
    return names


def check_tasks(
    bundle: Bundle, bundle_file: str, tasks: Sequence[str], skipped: frozenset[str]
) -> None:
    """UsageError naming every TASK the bundle does not have, or that the run would skip."""
    base = bundle.task_basename
    known = task_names(bundle, skipped)
    unknown, skipped_named = [], []
    for task in tasks:
        name = task.removeprefix(f"{base}:") if task != base else task
        if name not in known:
            unknown.append(task)
        elif not known[name]:
            skipped_named.append(task)
    if unknown:
        bare = [t.removeprefix(f"{base}:") for t in unknown]
        close = [m for t in bare for m in difflib.get_close_matches(t, list(known), n=1)]
        hint = (f"did you mean {' or '.join(map(repr, close))}? " if close else "") + (
            f"`uet list {bundle_file}` lists its steps; workstream ids, gates and "
            f"{base!r} (everything) are tasks too"
        )
        names = ", ".join(repr(t) for t in unknown)
        raise UsageError(f"{bundle_file}: bundle {bundle.bundle_id} has no task {names}", hint)
    marked = {s.step_id: s.skip for _, s in bundle.steps() if s.skip}
    if skipped_named and all(t.removeprefix(f"{base}:") in marked for t in skipped_named):
        names = ", ".join(
            f"{t!r} (skip: {marked[t.removeprefix(f'{base}:')]})" for t in skipped_named
        )
        raise UsageError(
            f"{names}: marked not to run in {bundle_file} (done in the plan it was converted from)",
            "remove the step's `skip` to run it again",
        )
    if skipped_named:
        names = ", ".join(repr(t) for t in skipped_named)
        raise UsageError(
            f"{names}: skipped by --skip-workstream (or depends on a skipped workstream)",
            "drop the task or the --skip-workstream",
        )


def skipped_steps(bundle: Bundle, workstreams: Sequence[str]) -> frozenset[str]:
    """Steps of skipped workstreams and everything that depends on them."""
    known = {ws.ws_id for ws in bundle.workstreams}
    for ws_id in workstreams:
        if ws_id not in known:
            close = difflib.get_close_matches(ws_id, sorted(known), n=1)
            hint = (
                f"did you mean {close[0]!r}?"
                if close
                else f"workstreams: {', '.join(sorted(known))}"
            )
            raise UsageError(f"--skip-workstream {ws_id}: no such workstream", hint)
    # `skip: done` (done in the plan it came from): not run, its dependents still are
    marked = frozenset(s.step_id for _, s in bundle.steps() if s.skip)
    if not workstreams:
        return marked
    roots = {ws.ws_id for ws in bundle.workstreams if ws.ws_id in workstreams}
    roots |= {s.step_id for ws in bundle.workstreams if ws.ws_id in roots for s in ws.steps}
    graph = build_graph(bundle)
    affected = dependents_of(graph, roots)
    return marked | frozenset(n for n in affected if graph.kinds.get(n) == "step")


def step_of(task: Any) -> str | None:
    """Step tasks are `<base>:<step_id>` with a uet meta; group tasks are not steps."""
    meta = getattr(task, "meta", None) or {}
    if "uet" not in meta:
        return None
    name: str = task.name
    return name.split(":", 1)[1]
