"""What a killed run left behind: finished work doit did not save, and tools still running.

A success recorded just before the kill is recognised by the step's definition and the
fingerprint of its files; a tool that outlived its runner (it runs in its own session
behind an exit-code trap) is waited for and its result adopted, so nothing runs twice.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING

from uet_doit.run.attempt import AttemptSpec, adopt_attempt
from uet_doit.run.step_spec import fingerprint
from uet_doit.state.records import AttemptOutcome, AttemptRecord, EventKind, RunState, StepState
from uet_doit.state.store import pid_alive
from uet_doit.tools.failures import FailureClass

if TYPE_CHECKING:
    from uet_doit.run.policy import StepOutcome, StepPolicy

_UNFINISHED = (AttemptOutcome.RUNNING, AttemptOutcome.INTERRUPTED)


def left_behind(policy: StepPolicy) -> StepOutcome | None:
    """The step's newest attempt, if a runner that is gone left it: adopt or recover it."""
    row = policy.store.latest_attempt(policy.spec.bundle_id, policy.spec.step_id)
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
    from uet_doit.run.policy import StepOutcome

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
    from uet_doit.run.policy import StepOutcome

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
    aspec = (
        AttemptSpec.from_json(text)
        if text
        else policy.attempt_spec(tool, row.attempt, policy.spec.instruction)
    )
    result = adopt_attempt(aspec, code, policy.tools.resolver())
    for extension in policy.extensions:  # e.g. land what an isolated attempt left
        result = extension.conclude_attempt(policy, aspec, result)
    policy.finish(row.id, result)
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
    """The tool wrapper writing `exit_file`, when the runner died before noting its pid."""
    needle = str(exit_file).encode()
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if needle in (entry / "cmdline").read_bytes():
                return int(entry.name)
        except OSError:
            continue
    return None


def _still_running(pid: int, exit_file: Path) -> bool:
    """Is `pid` alive, not a zombie, and still our tool's wrapper (its argv names exit_file)?"""
    if not pid_alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc: a live pid is taken to be ours
    return str(exit_file).encode() in cmdline
