"""Bundle -> doit task dicts. Pure: no files are read, no process started.

Layout under the group task `<bundle_id with - as _>`:
- `<base>:<step_id>`: one task per step; file_dep = its input files plus the outputs of the
  steps it depends on (so a changed output re-runs its dependents), targets = create_files,
  task_dep = step and workstream depends_on, uptodate = config_changed(step definition);
- `<base>:<ws_id>`: a group task per workstream, done when all its steps are.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from doit.tools import config_changed

from uet_doit.budget import budgets_for
from uet_doit.graph import normalise_path
from uet_doit.model import (
    Bundle,
    Step,
    Workstream,
    effective_breaker,
    effective_resilience,
    effective_timeout,
    effective_tool,
)
from uet_doit.resilience import BreakerPolicy, RetryPolicy
from uet_doit.step_runner import StepAction, StepSpec, ValidationSpec


def step_definition(bundle: Bundle, ws: Workstream, step: Step) -> dict[str, Any]:
    """What decides a step's result; editing any of it re-runs the step. Names, budgets,
    retry and timeout settings are left out: changing them never re-runs finished work."""
    validation = step.validation
    tool = effective_tool(bundle, ws, step)
    return {
        "tool": tool,
        # a shell command never sees the instruction (which may default to the step's name)
        "instruction": None if tool == "shell" else step.instruction,
        "files": sorted(step.context.files),
        "create_files": sorted(step.context.create_files),
        "command": step.context.command,
        "callable": step.context.callable,
        "params": step.context.params,
        "validation": None
        if validation is None
        else {
            "command": validation.test_command,
            "expected_exit_code": validation.expected_exit_code,
        },
        "model": step.model,
        "tool_options": step.tool_options,
        "env": step.env,
    }


def signature(definition: dict[str, Any]) -> str:
    text = json.dumps(definition, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def build_spec(
    bundle: Bundle, ws: Workstream, step: Step, root: Path
) -> tuple[StepSpec, dict[str, Any]]:
    definition = step_definition(bundle, ws, step)
    res = effective_resilience(bundle, ws, step)
    breaker = effective_breaker(bundle, ws)
    validation = None
    if step.validation is not None:
        cmd = step.validation.test_command
        validation = ValidationSpec(
            command=cmd if isinstance(cmd, str) else tuple(cmd),
            expected_exit_code=step.validation.expected_exit_code,
            timeout=step.validation.timeout or 600.0,
        )
    spec = StepSpec(
        bundle_id=bundle.bundle_id,
        ws_id=ws.ws_id,
        step_id=step.step_id,
        title=step.title,
        tool=definition["tool"],
        instruction=step.instruction,
        files=tuple(step.context.files),
        create_files=tuple(step.context.create_files),
        project_root=str(root),
        signature=signature(definition),
        timeout=effective_timeout(bundle, ws, step),
        task_kind=step.task_kind or ws.kind,
        budgets=budgets_for(bundle, ws, step),
        estimated_cost_usd=step.estimated_cost_usd,
        retry=RetryPolicy(
            max_retries=res.max_retries or 0,
            backoff_strategy=res.backoff_strategy or "exponential",
            initial_delay=res.initial_delay if res.initial_delay is not None else 1.0,
            max_delay=res.max_delay if res.max_delay is not None else 60.0,
            jitter=res.jitter or 0.0,
            retry_on=frozenset(res.retry_on or ()),
        ),
        breaker=BreakerPolicy(
            breaker.failure_threshold, breaker.timeout_seconds, breaker.half_open_after
        ),
        breaker_explicit=(ws.circuit_breaker or bundle.circuit_breaker) is not None,
        validation=validation,
        context={
            "command": step.context.command,
            "callable": step.context.callable,
            "params": step.context.params,
        },
        env=dict(step.env),
        model=step.model,
        tool_options=dict(step.tool_options),
        max_fix_attempts=step.max_fix_attempts,
    )
    return spec, definition


def compile_tasks(
    bundle: Bundle, root: Path, skip: frozenset[str] = frozenset()
) -> Iterator[dict[str, Any]]:
    """doit task dicts (sub-tasks of the bundle's group task), in bundle order.

    Steps in `skip` (skipped workstreams and their dependents) are left out entirely, so a
    later run without the skip still sees them as never run.
    """
    base = bundle.task_basename
    outputs: dict[str, list[str]] = {
        s.step_id: [normalise_path(p) for p in s.context.create_files] for _, s in bundle.steps()
    }
    ws_ids = {ws.ws_id for ws in bundle.workstreams}
    yield {
        "basename": base,
        "name": None,
        "doc": bundle.bundle_name or bundle.description or bundle.bundle_id,
    }
    for ws in bundle.workstreams:
        kept = [s for s in ws.steps if s.step_id not in skip]
        if not kept:
            continue
        for step in kept:
            spec, definition = build_spec(bundle, ws, step, root)
            targets = [normalise_path(p) for p in step.context.create_files]
            target_set = set(targets)
            file_dep = [
                p
                for p in dict.fromkeys(normalise_path(f) for f in step.context.files)
                if p not in target_set
            ]
            task_dep: list[str] = []
            for dep in step.depends_on:
                task_dep.append(f"{base}:{dep}")
                file_dep.extend(p for p in outputs.get(dep, ()) if p not in file_dep)
            task_dep.extend(
                f"{base}:{dep}" for dep in ws.depends_on if dep in ws_ids and dep not in skip
            )
            yield {
                "basename": base,
                "name": step.step_id,
                "doc": step.title,
                "actions": [StepAction(spec)],
                "file_dep": file_dep,
                "targets": targets,
                "task_dep": task_dep,
                "uptodate": [config_changed(definition)],
                "meta": {"uet": {"ws_id": ws.ws_id, "tool": spec.tool}},
                "verbosity": 1,
            }
        yield {
            "basename": base,
            "name": ws.ws_id,
            "doc": f"workstream: {ws.title}",
            "actions": None,
            "task_dep": [f"{base}:{s.step_id}" for s in kept],
        }
