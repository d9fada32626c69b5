"""Best-of-N: several attempts of one step at once, each in its own worktree; one lands.

`attempts: {best_of: N, tools: [claude, codex], pick: first|cheapest}` starts N attempts
together (tools in turn), each checked as usual (outputs, validation) in its worktree. Of
those that pass, the first to finish (the others are stopped then) or the cheapest (all
are waited for) is landed; if its landing fails (a conflict), the next one is tried. The
others are recorded as `superseded`, with what they cost; the step cache stores the winner
(through the usual `after_success`). When no attempt passes, the step fails with the last
failure: retries do not apply to the round.

Each attempt is the policy's one attempt routine (`StepPolicy.attempt`) in a thread of its
own; a `Round` is the turn that routine waits for before it concludes (judges and lands),
so the attempts conclude one after the other, in the order of the pick, once all have run.

It needs worktree isolation (a git repository, `isolation: worktree`); elsewhere the step
runs one attempt at a time as usual.
"""

from __future__ import annotations

import itertools
import logging
import threading
from dataclasses import dataclass, replace

from uet_doit.run.attempt_loop import tell_breaker
from uet_doit.run.budget_gate import note_spend, reserve_budget
from uet_doit.run.executors.attempt import AttemptResult, AttemptSpec
from uet_doit.run.executors.base import (
    AttemptHandle,
    DoneHandle,
    Executor,
    OnStart,
    starts_tools,
)
from uet_doit.run.extensions import StepOutcome, StepPolicy
from uet_doit.state.records import AttemptOutcome, StepState
from uet_doit.tools.failures import FailureClass
from uet_doit.tools.process import stop_attempts

_log = logging.getLogger(__name__)

#: what an attempt stopped before its tool started is recorded with
NOT_STARTED = "not started: another attempt passed first"


@dataclass(eq=False)
class Candidate:
    """One attempt of the round, as its thread and the round's turns see it."""

    tool: str
    attempt: int
    ran: AttemptResult | None = None  # what its executor returned, before it concluded
    result: AttemptResult | None = None  # as concluded (or as its preparation failed)
    finished: int = 0  # order of finishing (pick: first)
    started: bool = True  # False: stopped before its tool started
    done: bool = False  # its routine returned (or raised)
    error: BaseException | None = None
    pid: int | None = None  # the tool's process (local executor), to stop it
    handle: AttemptHandle | None = None  # the executor's handle (other executors), to cancel it
    stopped: bool = False  # stopped because another attempt passed first


class RoundStopped(Exception):
    """Another attempt of the round raised: this one is interrupted, not concluded."""


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
    round_ = Round(policy, candidates)
    threads = [threading.Thread(target=round_.run, args=(c,), daemon=True) for c in candidates]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    policy.last_attempt = first + len(candidates)
    if round_.error is not None:
        raise round_.error
    winner = round_.winner
    if winner is None:
        ran = [c for c in candidates if c.result is not None]
        last = max(ran, key=lambda c: c.finished) if ran else None
        cls = (last.result.failure_class if last and last.result else None) or FailureClass.UNKNOWN
        message = last.result.message if last and last.result else "no attempt could start"
        failed = policy.fail(cls, f"none of {len(candidates)} attempts passed: {message}")
        return StepOutcome(failed.state, failed.message, last.tool if last else tool, len(ran))
    note = f"best of {len(candidates)}: attempt {winner.attempt} by {winner.tool} landed"
    return StepOutcome(StepState.SUCCEEDED, note, winner.tool, len(candidates))


class Round:
    """The candidates' turns to conclude: once every one has run, those that failed first,
    then the passing ones in the pick's order until one lands; the rest are superseded.
    The one that lands is recorded last, when the others are (its `after_success` clears
    their worktrees)."""

    def __init__(self, policy: StepPolicy, candidates: list[Candidate]) -> None:
        self.policy = policy
        self.candidates = candidates
        self.local = policy.executor.name == "local"
        self.changed = threading.Condition()
        self.order = itertools.count(1)
        self.queue: list[Candidate] | None = None  # who concludes next, once all have run
        self.passing: list[Candidate] = []
        self.winner: Candidate | None = None
        self.error: BaseException | None = None  # the first a candidate raised

    def run(self, candidate: Candidate) -> None:
        """One candidate, in its own thread; what it raises is re-raised by the step's."""
        try:
            _run_candidate(self.policy, candidate, self)
        except BaseException as exc:
            candidate.error = exc
        with self.changed:
            candidate.done = True
            candidate.finished = candidate.finished or next(self.order)
            if self.error is None and candidate.error is not None:
                self.error = candidate.error
            self.changed.notify_all()

    def turn(self, candidate: Candidate) -> _Turn:
        return _Turn(self, candidate)

    def executor(self, candidate: Candidate) -> Executor:
        return _Stoppable(self.policy.executor, candidate)

    # -- called by the candidates' routines, under the lock ----------------------------------
    def arrive(self, candidate: Candidate, result: AttemptResult) -> AttemptResult | None:
        candidate.ran, candidate.finished = result, next(self.order)
        self.changed.notify_all()
        if not candidate.started:
            return replace(result, message=NOT_STARTED)
        if result.success and not candidate.stopped and self.policy.spec.best_of_pick == "first":
            for other in self.candidates:
                if other.ran is None and not other.done and not other.stopped:
                    self._stop(other)
        while True:
            if self.error is not None:
                msg = f"another attempt of the round raised {type(self.error).__name__}"
                raise RoundStopped(msg)
            if self.queue is None and all(c.ran is not None or c.done for c in self.candidates):
                self._line_up()
            if self.winner is not None:
                return _superseded(candidate, result)
            if self.queue and self.queue[0] is candidate:
                return None
            self.changed.wait()

    def conclude(self, candidate: Candidate, result: AttemptResult) -> AttemptResult:
        assert self.queue is not None
        candidate.result = result
        self.queue.remove(candidate)
        if candidate in self.passing and result.success:
            self.winner = candidate
        self.changed.notify_all()
        if self.winner is candidate:
            while not all(c.done for c in self.candidates if c is not candidate):
                self.changed.wait()
            return result
        return _superseded(candidate, result) if candidate.stopped else result

    def _line_up(self) -> None:
        ran = [c for c in self.candidates if c.ran is not None and c.started]
        passing = [c for c in ran if c.ran is not None and c.ran.success]
        if self.policy.spec.best_of_pick == "cheapest":
            passing.sort(key=lambda c: ((c.ran.cost_usd if c.ran else None) or 0.0, c.finished))
        else:
            passing.sort(key=lambda c: c.finished)
        self.passing = passing
        self.queue = [c for c in ran if c not in passing] + passing

    def _stop(self, candidate: Candidate) -> None:
        """Stop a candidate still running: another one passed first."""
        candidate.stopped = True
        if self.local and candidate.pid:
            stop_attempts([candidate.pid])  # its process group: the tool and its children
        elif candidate.handle is not None:
            candidate.handle.cancel()


class _Turn:
    """One candidate's turn, as its attempt routine waits for it."""

    def __init__(self, round_: Round, candidate: Candidate) -> None:
        self.round = round_
        self.candidate = candidate

    def wait(self, spec: AttemptSpec, result: AttemptResult) -> AttemptResult | None:
        with self.round.changed:
            return self.round.arrive(self.candidate, result)

    def concluded(self, spec: AttemptSpec, result: AttemptResult) -> AttemptResult:
        with self.round.changed:
            return self.round.conclude(self.candidate, result)


class _Stoppable:
    """The step's executor as one candidate sees it: what it needs to stop the tool is
    kept, and a candidate stopped while it waited for a slot does not start."""

    def __init__(self, inner: Executor, candidate: Candidate) -> None:
        self.inner = inner
        self.candidate = candidate
        self.name = inner.name
        self.starts_tools = starts_tools(inner)

    def submit(self, spec: AttemptSpec, on_start: OnStart | None = None) -> AttemptHandle:
        candidate = self.candidate
        if candidate.stopped:  # another attempt passed while this one waited
            candidate.started = False
            return DoneHandle(spec, AttemptResult(False, AttemptOutcome.SUPERSEDED))

        def started(pid: int) -> None:
            candidate.pid = pid
            if on_start is not None:
                on_start(pid)

        handle = candidate.handle = self.inner.submit(spec, started)
        return handle

    def close(self) -> None:
        """The step's executor is closed by its owner."""

    def stop(self) -> None:
        """Ctrl-C reaches the step's executor through its owner, the run."""


def _run_candidate(policy: StepPolicy, candidate: Candidate, round_: Round) -> None:
    """One attempt through the policy's routine, concluded when the round says so."""
    spec, tool = policy.spec, candidate.tool
    if spec.breaker_explicit or not policy.tools.traits(tool).local:
        allowed, _probe, reason = policy.breakers.admit(tool, spec.breaker, policy.clock.now())
        if not allowed:
            _log.debug("best-of %s: %s refused by its breaker: %s", spec.step_id, tool, reason)
            return
    reservation, refusal = reserve_budget(policy, tool)
    if refusal is not None:
        return
    note = f"best of {len(round_.candidates)} ({spec.best_of_pick}): landed"
    try:
        aspec = policy.attempt_spec(tool, candidate.attempt, spec.instruction)
        recorded = policy.attempt(
            aspec, round_.executor(candidate), success_note=note, turn=round_.turn(candidate)
        )
    finally:
        policy.ledger.release(reservation)
    if candidate.ran is None:  # its preparation failed: nothing ran
        candidate.result = recorded
    result = candidate.ran or recorded  # the budget and the breaker count what the tool did
    note_spend(policy, result)
    tell_breaker(policy, tool, result)


def _superseded(candidate: Candidate, result: AttemptResult) -> AttemptResult:
    """What a candidate that did not land is recorded with, when another one passed."""
    if not candidate.started:
        return result
    why = "superseded: another attempt landed; "
    if candidate.stopped:
        why = "stopped: another attempt passed first; "
    return replace(
        result,
        success=False,
        outcome=AttemptOutcome.SUPERSEDED,
        failure_class=None,
        message=why + result.message[:1900],
    )
