"""What a killed run left behind: finished work doit did not save, and tools still running.

A success recorded just before the kill is recognised by the step's definition and the
fingerprint of its files; a tool that outlived its runner (it runs in its own session
behind an exit-code trap) is waited for and its result adopted, so nothing runs twice.
"""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import replace
from pathlib import Path

from uet_doit.run.executors.attempt import AttemptSpec, adopt_attempt
from uet_doit.run.extensions import StepOutcome, StepPolicy
from uet_doit.run.step_spec import fingerprint
from uet_doit.state.records import AttemptOutcome, AttemptRecord, EventKind, RunState, StepState
from uet_doit.state.rows import pid_alive
from uet_doit.tools.failures import FailureClass

_UNFINISHED = (AttemptOutcome.RUNNING, AttemptOutcome.INTERRUPTED)


def left_behind(policy: StepPolicy) -> StepOutcome | None:
    """The step's newest attempt, if a runner that is gone left it: adopt or recover it."""
    row = policy.latest_attempt()
    if row is None or row.session == policy.ctx.session:
        return None  # nothing, or this very runner's own attempt
    if row.outcome in _UNFINISHED and row.exit_file:
        return adopt_orphan(policy, row)
    if row.outcome == AttemptOutcome.SUCCEEDED and row.run_status in (
        RunState.INTERRUPTED,
        RunState.RUNNING,
    ):
        return recovered(policy, row)  # a run that ended normally saved its doit state itself
    return None


def recovered(policy: StepPolicy, prev: AttemptRecord) -> StepOutcome | None:
    """A success recorded by a run killed before doit saved it: not done twice."""
    if prev.signature != policy.spec.signature:
        return None
    if prev.fingerprint != fingerprint(policy.root, policy.spec.paths):
        return None
    policy.store.event(
        policy.ctx.run_id, EventKind.RECOVERED, policy.spec.step_id, from_run=prev.run_id
    )
    note = f"finished in run {prev.run_id}"
    policy.state(StepState.SUCCEEDED, note, prev.tool)
    return StepOutcome(StepState.SUCCEEDED, note, prev.tool, 0, origin=prev.run_id)


def adopt_orphan(policy: StepPolicy, row: AttemptRecord) -> StepOutcome | None:
    """A tool left running by a killed runner: wait for it, then judge what it did."""
    store, clock = policy.store, policy.clock
    exit_file = Path(str(row.exit_file))
    pid = row.pid or _find_wrapper(exit_file)
    tool = row.tool or policy.spec.tool
    if pid and _still_running(pid, exit_file):
        policy.state(
            StepState.WAITING,
            f"waiting for the attempt left running by run {row.run_id} (pid {pid})",
            tool,
        )
        deadline = clock.now() + policy.timeout(tool)
        while _still_running(pid, exit_file) and clock.now() < deadline:
            clock.sleep(0.05)
        if _still_running(pid, exit_file):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
    try:
        code = int(exit_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        store.finish_attempt(
            row.id,
            AttemptOutcome.INTERRUPTED,
            failure_class=str(FailureClass.INTERRUPTED),
            message="the runner was killed while this attempt ran",
        )
        return None
    text = store.attempt_spec(row.id)
    fresh = policy.attempt_spec(tool, row.attempt, policy.spec.instruction)
    if text:  # the record keeps only uet's own env: the bundle's values come back from it
        kept = AttemptSpec.from_json(text)
        aspec = replace(kept, env={**fresh.env, **kept.env})
    else:
        aspec = fresh
    result = adopt_attempt(aspec, code, policy.tools.resolver())
    for extension in policy.extensions:  # e.g. land what an isolated attempt left
        result = extension.conclude_attempt(policy, aspec, result)
    policy.finish(row.id, result, tool=tool)
    store.event(
        policy.ctx.run_id,
        EventKind.ADOPTED,
        policy.spec.step_id,
        from_run=row.run_id,
        success=result.success,
    )
    if not result.success:
        return None
    note = f"finished by the tool run {row.run_id} started"
    policy.state(StepState.SUCCEEDED, note, tool)
    return StepOutcome(StepState.SUCCEEDED, note, tool, 0, origin=row.run_id)


def _find_wrapper(exit_file: Path) -> int | None:
    """The tool's pid as its reaper noted it (`<stem>.pid`), when the runner died before
    recording it."""
    found = _noted(exit_file)
    return found[0] if found else None


def _noted(exit_file: Path) -> tuple[int, str] | None:
    try:
        pid, _, started = exit_file.with_suffix(".pid").read_text().strip().partition(" ")
        return int(pid), started
    except (OSError, ValueError):
        return None


def _still_running(pid: int, exit_file: Path) -> bool:
    """Is the attempt's tool still running: no exit code yet, and `pid` alive with the start
    time its reaper noted (so a reused pid is not taken for it)?"""
    from uet_doit.tools.reaper import start_time

    if exit_file.exists() or not pid_alive(pid):
        return False
    noted = _noted(exit_file)
    return noted is None or noted[0] != pid or not noted[1] or start_time(pid) == noted[1]
