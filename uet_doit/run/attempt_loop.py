"""The attempts of a step: its tools in turn (the route's fallbacks), and per tool the
breaker, the budget, retries and the fix loop. Each attempt goes through the policy's one
routine (`StepPolicy.attempt`); what is decided here is whether, with what and when the
next one comes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from uet_doit.run.budget_gate import note_spend, reserve_budget
from uet_doit.run.executors.attempt import AttemptResult
from uet_doit.run.extensions import StepOutcome, StepPolicy
from uet_doit.run.resilience import TOOL_FAILURES, BreakerStatus
from uet_doit.state.records import AttemptOutcome, EventKind, StepState
from uet_doit.tools.failures import RETRIED_AT_ONCE, FailureClass
from uet_doit.tools.routing import availability, route_step

_log = logging.getLogger(__name__)

#: what a resumed session is told after a stall (its own session holds the task)
CONTINUE_PROMPT = (
    "You were stopped because you showed no sign of progress for a while. Continue the "
    "task where you left off and finish it."
)

#: a rate-limited step is requeued this often at least (its own count, not max_retries')
RATE_LIMIT_REQUEUES = 5

#: fix prompts carry at most this much of the validation output (or the review's reasons)
FIX_OUTPUT_CHARS = 3000
#: what the fix loop tells the tool, before the output that says what is wrong
FIX_PROMPTS = {
    FailureClass.VALIDATION: "The validation command failed after your change. Fix the "
    "problem. Its output:",
    FailureClass.REVIEW_REJECTED: "A reviewer rejected your change. Fix what it found:",
}


def tool_chain(policy: StepPolicy) -> tuple[list[str], str]:
    """The step's tool, then the fallbacks its route names; `auto` is routed outright."""
    tool = policy.spec.tool
    if policy.tools.traits(tool).local:
        return [tool], ""
    config = policy.tools.config
    files = policy.spec.paths
    if tool == "auto":
        # an executor that runs tools elsewhere (Dask workers) knows where they exist
        remote: Callable[[str], bool] | None = getattr(policy.executor, "tool_available", None)
        available = remote or availability(config, policy.root)
        decision = route_step(policy.spec.task_kind, files, config, available, auto=True)
        _log.debug("route %s: %s (%s)", policy.spec.step_id, decision.tools, decision.reason)
        return decision.tools, decision.reason
    decision = route_step(policy.spec.task_kind, files, config, lambda _t: True)
    fallbacks = [t for t in decision.tools if t != tool] if tool in decision.tools else []
    _log.debug("route %s: %s, fallbacks %s", policy.spec.step_id, tool, fallbacks)
    return [tool, *fallbacks], ""


def run_chain(policy: StepPolicy, chain: list[str]) -> StepOutcome:
    """The tools in turn: the next takes over when one fails for good (a permanent
    failure, a missing tool, an open breaker)."""
    outcome: StepOutcome | None = None
    previous: str | None = None
    for index, tool in enumerate(chain):
        outcome, fall_back = run_with_tool(policy, tool, previous)
        if outcome.ok or not fall_back:
            return outcome
        previous = tool
        if index + 1 < len(chain):
            policy.store.event(
                policy.ctx.run_id,
                EventKind.FALLBACK,
                policy.spec.step_id,
                from_tool=tool,
                to_tool=chain[index + 1],
            )
    assert outcome is not None
    return outcome


def run_with_tool(
    policy: StepPolicy, tool: str, fallback_from: str | None
) -> tuple[StepOutcome, bool]:
    """Attempts of one tool with retries and the fix loop. On failure, also says whether
    the next tool of the route may take over (permanent failure, missing tool, breaker)."""
    spec = policy.spec
    uses_breaker = spec.breaker_explicit or not policy.tools.traits(tool).local
    first = policy.attempts_so_far()
    attempt_no, instruction = first, spec.instruction
    resume: str | None = None  # the tool session a stalled attempt left to continue
    rate_limits = 0  # requeued apart from the retries of other failures
    fixes_allowed = {
        FailureClass.VALIDATION: policy.setup(tool).fix_rounds,
        FailureClass.REVIEW_REJECTED: spec.review.max_fix_attempts if spec.review else 0,
    }
    fixes_used = dict.fromkeys(fixes_allowed, 0)
    while True:
        attempt_no += 1
        if uses_breaker:
            allowed, _probe, reason = policy.breakers.admit(tool, spec.breaker, policy.clock.now())
            if not allowed:
                _log.debug("breaker %s refuses %s: %s", tool, spec.step_id, reason)
                _record_refusal(policy, tool, attempt_no, reason)
                return policy.fail(FailureClass.CIRCUIT_OPEN, reason, tool), True
        reservation, refusal = reserve_budget(policy, tool)
        if refusal is not None:
            return refusal, False
        note = f"by {tool} (fallback from {fallback_from})" if fallback_from else None
        try:
            aspec = policy.attempt_spec(tool, attempt_no, instruction, resume)
            result = policy.attempt(aspec, fallback_from=fallback_from, success_note=note)
        finally:
            policy.ledger.release(reservation)
        note_spend(policy, result)
        if uses_breaker:
            tell_breaker(policy, tool, result)
        if result.success:  # the step's state was recorded with the attempt
            return StepOutcome(StepState.SUCCEEDED, note or "", tool, attempt_no - first), False
        cls = result.failure_class or FailureClass.UNKNOWN
        resume, instruction = None, spec.instruction
        if cls == FailureClass.STALLED and result.tool_session:
            resume, instruction = result.tool_session, CONTINUE_PROMPT
        if cls in FIX_PROMPTS and fixes_used[cls] < fixes_allowed[cls]:
            fixes_used[cls] += 1
            instruction = (
                f"{spec.instruction}\n\n{FIX_PROMPTS[cls]}\n"
                f"{result.output_tail[-FIX_OUTPUT_CHARS:]}"
            )
            why = {} if cls == FailureClass.VALIDATION else {"reason": str(cls)}
            policy.store.event(
                policy.ctx.run_id,
                EventKind.FIX_ATTEMPT,
                spec.step_id,
                round=fixes_used[cls],
                **why,
            )
            continue
        if cls == FailureClass.RATE_LIMIT:
            rate_limits += 1
            retries_used = min(rate_limits, spec.retry.max_retries)
            most = spec.retry.max_retries
            if rate_limits > (max(most, RATE_LIMIT_REQUEUES) if most else 0):
                retries_used = spec.retry.max_retries + 1  # none left
        else:
            retries_used = attempt_no - first - sum(fixes_used.values()) - rate_limits
        if spec.retry.should_retry(cls, retries_used):
            wait = (
                0.0
                if cls in RETRIED_AT_ONCE
                else spec.retry.delay(retries_used, result.retry_after_s)
            )
            _log.debug(
                "retry %s after %s (retry %d of %d): waiting %.1fs",
                spec.step_id,
                cls,
                retries_used,
                spec.retry.max_retries,
                wait,
            )
            policy.state(StepState.RETRYING, f"{cls}: waiting {wait:.1f}s", tool)
            policy.store.event(
                policy.ctx.run_id,
                EventKind.RETRY_WAIT,
                spec.step_id,
                seconds=wait,
                failure_class=str(cls),
            )
            policy.clock.sleep(wait)
            continue
        _log.debug("%s fails with %s: %s, no retry left", spec.step_id, tool, cls)
        failed = policy.fail(cls, result.message, tool)
        message = (
            f"{spec.step_id} failed ({cls}) after {attempt_no - first} attempt(s) "
            f"with {tool}: {result.message}"
        )
        fall_back = cls in (
            FailureClass.PERMANENT,
            FailureClass.CIRCUIT_OPEN,
            FailureClass.NOT_INSTALLED,
        )
        return StepOutcome(failed.state, message, tool, attempt_no - first), fall_back


def tell_breaker(policy: StepPolicy, tool: str, result: AttemptResult) -> None:
    """After an attempt: a success, or a failure of the tool itself, counts for its breaker."""
    tool_failed = not result.success and result.failure_class in TOOL_FAILURES
    if policy.providers is not None and result.failure_class == FailureClass.RATE_LIMIT:
        tool_failed = False  # the provider's adaptive limit answers a storm, not the breaker
    if result.success or tool_failed:
        state = policy.breakers.record(
            tool, policy.spec.breaker, result.success, policy.clock.now()
        )
        if state == BreakerStatus.OPEN and tool_failed:
            _log.debug("breaker %s opens after %s failed", tool, policy.spec.step_id)
            policy.store.event(
                policy.ctx.run_id, EventKind.BREAKER_OPEN, policy.spec.step_id, tool=tool
            )


def _record_refusal(policy: StepPolicy, tool: str, attempt_no: int, reason: str) -> None:
    """A refusal is an attempt that never started: recorded so status can say why."""
    spec = policy.spec
    attempt_id = policy.store.begin_attempt(
        policy.ctx.run_id,
        spec.bundle_id,
        spec.ws_id,
        spec.step_id,
        tool,
        attempt_no,
        session=policy.ctx.session,
        outcome=AttemptOutcome.REFUSED,
    )
    policy.last_attempt = attempt_no
    policy.store.finish_attempt(
        attempt_id,
        AttemptOutcome.REFUSED,
        failure_class=str(FailureClass.CIRCUIT_OPEN),
        message=reason,
    )
