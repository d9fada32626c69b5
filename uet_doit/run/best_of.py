"""Best-of-N: several attempts of one step at once, each in its own worktree; one lands.

`attempts: {best_of: N, tools: [claude, codex], pick: first|cheapest}` starts N attempts
together (tools in turn), each checked as usual (outputs, validation) in its worktree. Of
those that pass, the first to finish (the others are stopped then) or the cheapest (all
are waited for) is landed; if its landing fails (a conflict), the next one is tried. The
others are recorded as `superseded`, with what they cost; the step cache stores the winner
(through the usual `after_success`). When no attempt passes, the step fails with the last
failure: retries do not apply to the round.

It needs worktree isolation (a git repository, `isolation: worktree`); elsewhere the step
runs one attempt at a time as usual.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from uet_doit.run.budget_gate import note_spend, reserve_budget
from uet_doit.run.extensions import AttemptNotRun, StepOutcome, StepPolicy
from uet_doit.state.records import AttemptOutcome, StepState
from uet_doit.tools.failures import FailureClass

if TYPE_CHECKING:
    from uet_doit.run.executors.attempt import AttemptResult, AttemptSpec

_log = logging.getLogger(__name__)


@dataclass
class Candidate:
    tool: str
    attempt: int
    spec: AttemptSpec | None = None
    attempt_id: int | None = None
    result: AttemptResult | None = None
    finished: int = 0  # order of finishing (pick: first)
    error: BaseException | None = None
    pid: int | None = None  # the tool's process (local executor), to stop it
    handle: Any = None  # the executor's handle (other executors), to cancel it
    stopped: bool = False  # stopped because another attempt passed first


def _stop(candidate: Candidate, local: bool) -> None:
    """Stop a candidate still running: another one passed first."""
    from uet_doit.tools.process import stop_attempts

    candidate.stopped = True
    if local and candidate.pid:
        stop_attempts([candidate.pid])  # its process group: the tool and its children
    elif candidate.handle is not None:
        candidate.handle.cancel()


def applies(policy: StepPolicy) -> bool:
    spec = policy.spec
    isolated = spec.isolation == "worktree" and policy.ctx.landing_branch is not None
    return spec.best_of > 1 and isolated


def run_best_of(policy: StepPolicy, tool: str) -> StepOutcome | None:
    """The step's outcome after a best-of round; None when best-of does not apply."""
    if not applies(policy):
        return None
    spec = policy.spec
    tools = spec.best_of_tools or (tool,)
    first = policy.attempts_so_far()
    candidates = [Candidate(tools[i % len(tools)], first + i + 1) for i in range(spec.best_of)]
    order = iter(range(1, len(candidates) + 1))
    lock = threading.Lock()

    local = policy.executor.name == "local"

    def run(candidate: Candidate) -> None:
        try:
            _run_candidate(policy, candidate)
        except BaseException as exc:  # re-raised in the step's own thread below
            candidate.error = exc
        with lock:
            candidate.finished = next(order)
            won = candidate.result is not None and candidate.result.success
            if won and not candidate.stopped and spec.best_of_pick == "first":
                for other in candidates:
                    if other.result is None and not other.stopped:
                        _stop(other, local)

    threads = [threading.Thread(target=run, args=(c,), daemon=True) for c in candidates]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    policy.last_attempt = first + len(candidates)
    errors = [c.error for c in candidates if c.error is not None]
    if errors:
        _abandon(policy, [c for c in candidates if c.spec is not None], interrupted=True)
        raise errors[0]
    winner = _land_best(policy, candidates)
    if winner is None:
        ran = [c for c in candidates if c.result is not None]
        last = max(ran, key=lambda c: c.finished) if ran else None
        cls = (last.result.failure_class if last and last.result else None) or FailureClass.UNKNOWN
        message = last.result.message if last and last.result else "no attempt could start"
        failed = policy.fail(cls, f"none of {len(candidates)} attempts passed: {message}")
        return StepOutcome(failed.state, failed.message, last.tool if last else tool, len(ran))
    assert winner.result is not None
    note = f"best of {len(candidates)}: attempt {winner.attempt} by {winner.tool} landed"
    return StepOutcome(StepState.SUCCEEDED, note, winner.tool, len(candidates))


def _run_candidate(policy: StepPolicy, candidate: Candidate) -> None:
    """One attempt up to its result (outputs and validation checked), not concluded."""
    spec, tool = policy.spec, candidate.tool
    if spec.breaker_explicit or not policy.tools.traits(tool).local:
        allowed, _probe, reason = policy.breakers.admit(tool, spec.breaker, policy.clock.now())
        if not allowed:
            _log.debug("best-of %s: %s refused by its breaker: %s", spec.step_id, tool, reason)
            return
    reservation, refusal = reserve_budget(policy, tool)
    if refusal is not None:
        return
    try:
        aspec = policy.attempt_spec(tool, candidate.attempt, spec.instruction)
        try:
            for extension in policy.extensions:
                aspec = extension.prepare_attempt(policy, aspec)
        except AttemptNotRun as exc:
            candidate.attempt_id = policy.begin(aspec)
            candidate.spec, candidate.result = aspec, exc.result
            return
        candidate.spec = aspec
        candidate.attempt_id = policy.begin(aspec)
        attempt_id = candidate.attempt_id

        def started(pid: int) -> None:
            candidate.pid = pid
            policy.store.set_attempt_process(attempt_id, pid)

        with policy.slot(tool), policy.provider_place(aspec):
            if candidate.stopped:  # another attempt passed while this one waited
                return
            candidate.handle = policy.executor.submit(aspec, started)
            candidate.result = candidate.handle.result()
    finally:
        policy.ledger.release(reservation)
    note_spend(policy, candidate.result)
    policy.tell_breaker(tool, candidate.result)


def _land_best(policy: StepPolicy, candidates: list[Candidate]) -> Candidate | None:
    """Conclude (land) the preferred passing attempt; record every other one."""
    ran = [c for c in candidates if c.spec is not None and c.result is not None]
    passing = [c for c in ran if c.result is not None and c.result.success]
    if policy.spec.best_of_pick == "cheapest":
        passing.sort(key=lambda c: ((c.result.cost_usd if c.result else None) or 0.0, c.finished))
    else:
        passing.sort(key=lambda c: c.finished)
    winner: Candidate | None = None
    for candidate in [c for c in ran if c not in passing] + passing:
        if winner is not None:
            break
        _conclude(policy, candidate)
        assert candidate.result is not None
        if candidate in passing and candidate.result.success:
            winner = candidate
        else:  # failed, stopped for the first to pass, or passed but could not land
            _finish(policy, candidate, superseded=candidate.stopped)
    # the passing ones after the winner never concluded: superseded, their worktrees kept
    superseded = passing[passing.index(winner) + 1 :] if winner is not None else []
    unstarted = [c for c in candidates if c.attempt_id is not None and c.result is None]
    _abandon(policy, [*superseded, *unstarted], interrupted=False)
    for candidate in superseded:
        _finish(policy, candidate, superseded=True)
    for candidate in unstarted:
        assert candidate.attempt_id is not None
        policy.store.finish_attempt(
            candidate.attempt_id,
            AttemptOutcome.SUPERSEDED,
            message="not started: another attempt passed first",
        )
    if winner is not None:
        assert winner.spec is not None and winner.result is not None and winner.attempt_id
        note = f"best of {len(candidates)} ({policy.spec.best_of_pick}): landed"
        policy.finish(winner.attempt_id, winner.result, note, winner.spec)
        for extension in policy.extensions:
            extension.after_success(policy, winner.spec, winner.result)
    return winner


def _conclude(policy: StepPolicy, candidate: Candidate) -> None:
    assert candidate.spec is not None and candidate.result is not None
    for extension in policy.extensions:
        candidate.result = extension.conclude_attempt(policy, candidate.spec, candidate.result)


def _abandon(policy: StepPolicy, candidates: list[Candidate], *, interrupted: bool) -> None:
    for candidate in candidates:
        assert candidate.spec is not None
        for extension in policy.extensions:
            extension.abandon_attempt(policy, candidate.spec)
        if interrupted and candidate.attempt_id is not None:
            policy.store.finish_attempt(
                candidate.attempt_id,
                AttemptOutcome.INTERRUPTED,
                failure_class=str(FailureClass.INTERRUPTED),
                message="interrupted",
            )


def _finish(policy: StepPolicy, candidate: Candidate, *, superseded: bool = False) -> None:
    """A candidate that did not land: failed, or passed but another one landed."""
    result, attempt_id = candidate.result, candidate.attempt_id
    if result is None or attempt_id is None:
        return
    passed = result.success
    replaced = superseded and (passed or candidate.stopped)
    outcome = AttemptOutcome.SUPERSEDED if replaced else AttemptOutcome.FAILED
    cls = result.failure_class
    why = "superseded: another attempt landed; " if passed else ""
    if candidate.stopped:
        why = "stopped: another attempt passed first; "
    policy.store.finish_attempt(
        attempt_id,
        outcome,
        exit_code=result.exit_code,
        failure_class=None if outcome == AttemptOutcome.SUPERSEDED else str(cls or "unknown"),
        message=why + result.message[:1900],
        cost_usd=result.cost_usd,
        tokens_in=result.tokens_in,
        tokens_out=result.tokens_out,
        model=result.model,
        cost_source=result.cost_source,
        worker=result.worker or None,
    )
