"""What a killed run left behind: finished work doit did not save, and tools still running.

A success recorded just before the kill is recognised by the step's definition and the
fingerprint of its files; a tool that outlived its runner (it runs in its own session
behind an exit-code trap) is waited for and its result adopted, so nothing runs twice.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from uet_doit.run.executors.adopted import AdoptedExecutor
from uet_doit.run.executors.attempt import AttemptSpec
from uet_doit.run.executors.base import Declined
from uet_doit.run.extensions import StepOutcome, StepPolicy
from uet_doit.run.step_spec import fingerprint
from uet_doit.state.records import AttemptOutcome, AttemptRecord, EventKind, RunState, StepState

_UNFINISHED = (AttemptOutcome.RUNNING, AttemptOutcome.INTERRUPTED)


def left_behind(policy: StepPolicy) -> StepOutcome | None:
    """The step's newest attempt, if a runner that is gone left it: adopt or recover it."""
    row = policy.latest_attempt()
    if row is None or row.session == policy.ctx.session:
        return None  # nothing, or this very runner's own attempt
    if row.ws_id is not None and row.ws_id != policy.spec.ws_id:
        return None  # a pseudo-step's of the same id (a `uet convert --with` draft)
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
    """A tool left running by a killed runner: its attempt, through the policy's one
    sequence with the adopted executor (wait for it, then judge what it did)."""

    tool = row.tool or policy.spec.tool

    def waiting(pid: int) -> None:
        note = f"waiting for the attempt left running by run {row.run_id} (pid {pid})"
        policy.state(StepState.WAITING, note, tool)

    executor = AdoptedExecutor(
        Path(str(row.exit_file)),
        row.pid,
        policy.clock,
        policy.timeout(tool),
        policy.tools.resolver(),
        waiting,
    )
    text = policy.store.attempt_spec(row.id)
    fresh = policy.attempt_spec(tool, row.attempt, policy.spec.instruction)
    if text:  # the record keeps only uet's own env: the bundle's values come back from it
        kept = AttemptSpec.from_json(text)
        aspec = replace(kept, env={**fresh.env, **kept.env})
    else:
        aspec = fresh
    note = f"finished by the tool run {row.run_id} started"
    try:
        result = policy.attempt(aspec, executor, attempt_id=row.id, success_note=note)
    except Declined:
        return None  # recorded as interrupted: the step runs
    policy.store.event(
        policy.ctx.run_id,
        EventKind.ADOPTED,
        policy.spec.step_id,
        from_run=row.run_id,
        success=result.success,
    )
    if not result.success:
        return None
    return StepOutcome(StepState.SUCCEEDED, note, tool, 0, origin=row.run_id)
