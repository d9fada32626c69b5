"""Bundle -> doit task dicts. Pure: no files are read, no process started.

Layout under the group task `<bundle_id with - as _>`:
- `<base>:<step_id>`: one task per step; file_dep = its input files plus the outputs of the
  steps it depends on (so a changed output re-runs its dependents), targets = create_files,
  task_dep = step and workstream depends_on, uptodate = config_changed(step definition);
- `<base>:<ws_id>`: a group task per workstream, done when all its steps are.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from doit.tools import config_changed

from uet_doit.bundle.effective import (
    effective_breaker,
    effective_resilience,
    effective_stall_timeout,
    effective_timeout,
    effective_tool,
    effective_workspace,
)
from uet_doit.bundle.graph import build_graph, dependents_of, normalise_path
from uet_doit.bundle.model import Bundle, Step, TestGate, Workstream
from uet_doit.cache.settings import declared_mode, key_env, max_bytes
from uet_doit.run.resilience import BreakerPolicy, RetryPolicy
from uet_doit.run.scheduling import StepSchedule, plan_schedule
from uet_doit.run.step_spec import (
    GateSpec,
    StepSpec,
    budgets_for,
    effective_isolation,
    gate_spec,
    gate_task_name,
    step_reviewer,
)
from uet_doit.tools.attempt import ValidationSpec

#: doit swaps sys.stdout/stderr around every python-action it captures, which threads of
#: `-P thread` undo in the wrong order: the caller of `run_bundle` was left with a dead
#: task's writer as sys.stdout. A step's action prints nothing (its tool's output goes to
#: files), so nothing is captured and the streams are never swapped.
NO_CAPTURE: dict[str, Any] = {"capture": False}


class TaskActions(Protocol):
    """What the compiler asks for the actions of a task: the runner gives real ones, a
    listing gives none (so nothing of the runtime is imported or built)."""

    def step(
        self, bundle: Bundle, ws: Workstream, step: Step, signature: str, root: Path
    ) -> list[Any]: ...

    def gate(self, spec: GateSpec) -> list[Any]: ...


class NoActions:
    """Tasks for judging up-to-dateness only (`uet list`, `--dry-run`)."""

    def step(
        self, bundle: Bundle, ws: Workstream, step: Step, signature: str, root: Path
    ) -> list[Any]:
        return []

    def gate(self, spec: GateSpec) -> list[Any]:
        return []


class DefinitionUnchanged(config_changed):  # type: ignore[misc]
    """doit's config_changed, with its call signature given up front: doit inspects every
    uptodate callable of every task on every run (a tenth of a no-op run at 10k steps)."""

    __signature__ = inspect.Signature(
        [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in ("task", "values")]
    )


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


Policies = tuple[RetryPolicy, BreakerPolicy]


def _policies(bundle: Bundle, ws: Workstream, step: Step, memo: dict[str, Policies]) -> Policies:
    """Retry and breaker policies; shared by every step of a workstream without its own
    `resilience` (built once, not ten thousand times)."""
    if step.resilience is None and ws.ws_id in memo:
        return memo[ws.ws_id]
    res = effective_resilience(bundle, ws, step)
    breaker = effective_breaker(bundle, ws)
    policies = (
        RetryPolicy(
            max_retries=res.max_retries or 0,
            backoff_strategy=res.backoff_strategy or "exponential",
            initial_delay=res.initial_delay if res.initial_delay is not None else 1.0,
            max_delay=res.max_delay if res.max_delay is not None else 60.0,
            jitter=res.jitter or 0.0,
            retry_on=frozenset(res.retry_on or ()),
        ),
        BreakerPolicy(breaker.failure_threshold, breaker.timeout_seconds, breaker.half_open_after),
    )
    if step.resilience is None:
        memo[ws.ws_id] = policies
    return policies


def build_spec(
    bundle: Bundle,
    ws: Workstream,
    step: Step,
    root: Path,
    memo: dict[str, Policies] | None = None,
    signature_text: str | None = None,
    outputs: Mapping[str, Sequence[str]] | None = None,
) -> StepSpec:
    """`outputs` (step_id -> create_files) is given by callers that build many specs."""
    tool = effective_tool(bundle, ws, step)
    if signature_text is None:
        signature_text = signature(step_definition(bundle, ws, step))
    retry, breaker_policy = _policies(bundle, ws, step, {} if memo is None else memo)
    validation = None
    if step.validation is not None:
        cmd = step.validation.test_command
        validation = ValidationSpec(
            command=cmd if isinstance(cmd, str) else tuple(cmd),
            expected_exit_code=step.validation.expected_exit_code,
            timeout=step.validation.timeout or 600.0,
        )
    return StepSpec(
        bundle_id=bundle.bundle_id,
        ws_id=ws.ws_id,
        step_id=step.step_id,
        title=step.title,
        tool=tool,
        instruction=step.instruction,
        files=tuple(step.context.files),
        create_files=tuple(step.context.create_files),
        project_root=str(root),
        signature=signature_text,
        timeout=effective_timeout(bundle, ws, step),
        stall_timeout=effective_stall_timeout(bundle, ws, step),
        task_kind=step.task_kind or ws.kind,
        budgets=budgets_for(bundle, ws, step),
        estimated_cost_usd=step.estimated_cost_usd,
        context_tokens=ws.estimated_context_tokens,
        retry=retry,
        breaker=breaker_policy,
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
        max_log_bytes=bundle.max_log_bytes,
        cache_mode=declared_mode(bundle, ws, step),
        cache_env=key_env(bundle, ws, step),
        cache_max_bytes=max_bytes(bundle, ws, step),
        upstream_outputs=upstream_outputs(bundle, step, outputs),
        best_of=step.attempts.best_of if step.attempts else 1,
        best_of_tools=tuple(step.attempts.tools) if step.attempts else (),
        best_of_pick=step.attempts.pick if step.attempts else "first",
        review=step_reviewer(bundle, ws, step),
        **_isolation(bundle, ws, step, root),
    )


def _isolation(bundle: Bundle, ws: Workstream, step: Step, root: Path) -> dict[str, Any]:
    workspace = effective_workspace(bundle, ws, step)
    setup = workspace.setup
    return {
        "isolation": effective_isolation(bundle, ws, step),
        "sandbox": step.sandbox or ws.sandbox or bundle.sandbox or _profile_sandbox(root),
        "scope": tuple(step.scope),
        "workspace_copy": tuple(workspace.copy_files),
        "workspace_setup": setup if setup is None or isinstance(setup, str) else tuple(setup),
        "workspace_dir": workspace.dir,
        "serialize": (step.conflicts or ws.conflicts or bundle.conflicts) == "serialize",
    }


def _profile_sandbox(root: Path) -> str:
    try:
        stamp = (root / "PROJECT_PROFILE.yaml").stat().st_mtime_ns
    except OSError:
        return "auto"
    return _profile_sandbox_at(root, stamp)


@functools.lru_cache(maxsize=8)
def _profile_sandbox_at(root: Path, stamp: int) -> str:
    """Read once per profile version, not once per step."""
    from uet_doit.state.project import profile_sandbox  # lazy: start-up time

    return profile_sandbox(root)


def step_outputs(bundle: Bundle) -> dict[str, list[str]]:
    return {
        s.step_id: [normalise_path(p) for p in s.context.create_files] for _, s in bundle.steps()
    }


def upstream_outputs(
    bundle: Bundle, step: Step, outputs: Mapping[str, Sequence[str]] | None = None
) -> tuple[str, ...]:
    """The outputs of the steps a step depends on (its file_dep beyond its own inputs)."""
    if not step.depends_on:
        return ()
    known = step_outputs(bundle) if outputs is None else outputs
    return tuple(dict.fromkeys(p for dep in step.depends_on for p in known.get(dep, ())))


def _is_dir_spelling(path: str) -> bool:
    return path.endswith("/")


def _shared_inputs_owned_later(bundle: Bundle) -> dict[str, set[str]]:
    """step_id -> input files a later step (one that waits for it) also lists. Tools edit
    their input files; tracking such a file on the earlier step would re-run it after
    every run of the later one, so only the last step in line tracks it."""
    readers: dict[str, list[str]] = {}
    for _, step in bundle.steps():
        for path in step.context.files:
            readers.setdefault(normalise_path(path), []).append(step.step_id)
    shared = {p: ids for p, ids in readers.items() if len(ids) > 1}
    if not shared:
        return {}
    graph = build_graph(bundle)
    later: dict[str, set[str]] = {}
    cache: dict[str, set[str]] = {}
    for path, ids in shared.items():
        for step_id in ids:
            if step_id not in cache:
                cache[step_id] = dependents_of(graph, {step_id})
            if any(other != step_id and other in cache[step_id] for other in ids):
                later.setdefault(step_id, set()).add(path)
    return later


def compile_tasks(
    bundle: Bundle,
    root: Path,
    actions: TaskActions,
    skip: frozenset[str] = frozenset(),
    is_dir: Callable[[str], bool] = _is_dir_spelling,
    signatures: Mapping[str, str] | None = None,
    schedule: Mapping[str, StepSchedule] | None = None,
) -> Iterator[dict[str, Any]]:
    """doit task dicts (sub-tasks of the bundle's group task), in bundle order.

    `signatures` (step id -> definition signature), when the caller computed them already,
    are used instead of hashing every definition again.

    Steps in `skip` (skipped workstreams and their dependents) are left out entirely, so a
    later run without the skip still sees them as never run. Folders named as inputs are
    passed to the tool but not tracked (doit tracks files); `is_dir` tells them apart.
    `actions` makes each task's actions (NoActions for listing: nothing is built).
    `schedule` (run/scheduling.py) ranks the steps for the dispatcher; without it every
    step is expected to take the same time.
    """
    if schedule is None:
        schedule = plan_schedule(bundle)
    base = bundle.task_basename
    outputs: dict[str, list[str]] = {
        s.step_id: [normalise_path(p) for p in s.context.create_files] for _, s in bundle.steps()
    }
    owned_later = _shared_inputs_owned_later(bundle)
    # a workstream all of whose steps are skipped (`skip: done`) is not a task: nothing waits on it
    ws_ids = {ws.ws_id for ws in bundle.workstreams if any(s.step_id not in skip for s in ws.steps)}
    yield {
        "basename": base,
        "name": None,
        "doc": bundle.bundle_name or bundle.description or bundle.bundle_id,
    }
    kept_ws: list[str] = []
    all_outputs: list[str] = []
    for ws in bundle.workstreams:
        kept = [s for s in ws.steps if s.step_id not in skip]
        if not kept:
            continue
        kept_ws.append(ws.ws_id)
        ws_files: list[str] = []
        for step in kept:
            known = signatures.get(step.step_id) if signatures is not None else None
            if known is not None:
                tool, signature_text = effective_tool(bundle, ws, step), known
            else:
                definition = step_definition(bundle, ws, step)
                tool, signature_text = definition["tool"], signature(definition)
            targets = [normalise_path(p) for p in step.context.create_files]
            target_set = set(targets)
            untracked = owned_later.get(step.step_id, set())
            file_dep = [
                p
                for p in dict.fromkeys(normalise_path(f) for f in step.context.files)
                if p not in target_set
                and p not in untracked
                and not is_dir(p)
                and not _is_dir_spelling(p)
            ]
            ws_files.extend([*file_dep, *targets])
            task_dep: list[str] = []
            for dep in step.depends_on:
                if dep in skip or (dep not in outputs and dep not in ws_ids):
                    continue  # done already (`skip: done`), or a workstream of such steps
                task_dep.append(f"{base}:{dep}")
                file_dep.extend(p for p in outputs.get(dep, ()) if p not in file_dep)
            task_dep.extend(
                f"{base}:{dep}" for dep in ws.depends_on if dep in ws_ids and dep not in skip
            )
            yield {
                "basename": base,
                "name": step.step_id,
                "doc": step.title,
                "actions": actions.step(bundle, ws, step, signature_text, root),
                "file_dep": file_dep,
                "targets": targets,
                "task_dep": task_dep,
                # the signature (a hash of the definition) is what doit stores: one encoding
                "uptodate": [DefinitionUnchanged(signature_text)],
                "meta": {
                    "uet": {
                        "ws_id": ws.ws_id,
                        "tool": tool,
                        "sched": schedule[step.step_id].to_meta(),
                    }
                },
                "verbosity": 1,
                "io": NO_CAPTURE,
            }
        ws_files = list(dict.fromkeys(ws_files))
        all_outputs.extend(ws_files)
        step_tasks = [f"{base}:{s.step_id}" for s in kept]
        gate_tasks = list(
            _gate_tasks(bundle, ws.ws_id, ws.test_gates, root, step_tasks, ws_files, actions)
        )
        # names first: doit rewrites a yielded dict's name to `base:name` as it loads it
        gate_names = [f"{base}:{g['name']}" for g in gate_tasks]
        yield from gate_tasks
        yield {
            "basename": base,
            "name": ws.ws_id,
            "doc": f"workstream: {ws.title}",
            "actions": None,
            "task_dep": step_tasks + gate_names,
        }
    yield from _gate_tasks(
        bundle,
        "bundle",
        bundle.test_gates,
        root,
        [f"{base}:{w}" for w in kept_ws],
        list(dict.fromkeys(all_outputs)),
        actions,
    )


def _gate_tasks(
    bundle: Bundle,
    scope: str,
    gates: list[TestGate],
    root: Path,
    after: list[str],
    files: list[str],
    actions: TaskActions,
) -> Iterator[dict[str, Any]]:
    """A gate is its own task after its scope's steps, re-run when their files change."""
    for index, gate in enumerate(gates):
        spec = gate_spec(bundle, scope, index, gate, root)
        yield {
            "basename": bundle.task_basename,
            "name": gate_task_name(scope, index, gate),
            "doc": f"{gate.type} gate: {gate.command}",
            "actions": actions.gate(spec),
            "file_dep": files,
            "task_dep": after,
            "uptodate": [DefinitionUnchanged(gate.model_dump(mode="json"))],
            "meta": {"uet_gate": {"scope": scope, "type": gate.type, "blocking": gate.blocking}},
            "verbosity": 1,
            "io": NO_CAPTURE,
        }
