"""The vocabulary of the run store: states and outcomes as enums, rows as frozen records.

Every status a run, step, attempt or event can have is named here once; no other module
compares a status with a string literal.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from uet_doit.state.unknown_cost import is_unknown


class RunState(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    PAUSED = "paused"


class StepState(StrEnum):
    PENDING = "pending"
    WAITING = "waiting"  # for a tool slot, or for a tool a killed run left running
    RUNNING = "running"
    RETRYING = "retrying"
    SUCCEEDED = "succeeded"
    UP_TO_DATE = "up_to_date"
    SKIPPED = "skipped"
    FAILED = "failed"
    BLOCKED = "blocked"
    PAUSED = "paused"
    NOT_STARTED = "not_started"
    INTERRUPTED = "interrupted"


#: a step in one of these states has done its work (now or in an earlier run)
DONE_STEP_STATES = frozenset({StepState.SUCCEEDED, StepState.UP_TO_DATE})
#: a step in one of these states needs nothing more in this run (skipped work is not done)
FINISHED_STEP_STATES = DONE_STEP_STATES | {StepState.SKIPPED}
#: states in which a step is under way
ACTIVE_STEP_STATES = frozenset({StepState.RUNNING, StepState.RETRYING, StepState.WAITING})
#: states that make a run fail
FAILING_STEP_STATES = frozenset({StepState.FAILED, StepState.BLOCKED, StepState.NOT_STARTED})


class AttemptOutcome(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    REFUSED = "refused"  # never started: the tool's circuit breaker was open
    CACHED = "cached"  # the outputs came from the step cache; the tool did not run
    SUPERSEDED = "superseded"  # best-of-N: it ran (and cost), another attempt landed


#: outcomes of attempts that started a tool (counted as attempts in status and the summary)
STARTED_OUTCOMES = frozenset(
    {
        AttemptOutcome.RUNNING,
        AttemptOutcome.SUCCEEDED,
        AttemptOutcome.FAILED,
        AttemptOutcome.INTERRUPTED,
        AttemptOutcome.SUPERSEDED,
    }
)


class EventKind(StrEnum):
    FALLBACK = "fallback"
    FIX_ATTEMPT = "fix_attempt"
    RETRY_WAIT = "retry_wait"
    BREAKER_OPEN = "breaker_open"
    BUDGET_EXCEEDED = "budget_exceeded"  # under a `warn` budget: recorded, the step runs
    BUDGET_FAILED = "budget_failed"
    BUDGET_PAUSED = "budget_paused"
    BUDGET_WARNING = "budget_warning"
    OVER_BUDGET = "over_budget"
    COST_REJECTED = "cost_rejected"  # a negative, NaN or infinite cost a tool reported
    COST_UNKNOWN = "cost_unknown"  # an attempt's cost is unknown: what budgets count for it
    RECOVERED = "recovered"
    ADOPTED = "adopted"
    WORKSTREAM_SKIPPED = "workstream_skipped"
    GATE_PASSED = "gate_passed"
    GATE_FAILED = "gate_failed"
    GATE_SKIPPED = "gate_skipped"
    CRITERION = "criterion"
    NOTIFIED = "notified"
    WORKER_LOST = "worker_lost"
    LANDING = "landing"  # the commit a landing is about to put on the branch (its witness)
    LANDED = "landed"  # an isolated step's commit landed on the run's branch
    RESTORED = "restored"  # a deleted output put back from the landed tip, no tool call
    TAMPERED = "tampered"  # git config/hooks a tool planted, put back; a branch moved
    CACHE_HIT = "cache_hit"  # a step's outputs restored from the step cache
    CACHE_STORED = "cache_stored"  # a step's outputs put in the step cache
    CACHE_WARNING = "cache_warning"  # a store unreachable, an entry damaged: the step ran
    CONCURRENCY = "concurrency"  # a provider's adaptive limit changed (run/providers.py)
    REVIEWED = "reviewed"  # a reviewer's verdict on a step's change or a criterion
    REVIEW_WROTE = "review_wrote"  # a reviewer changed files: refused (thrown away)


GATE_EVENTS = (EventKind.GATE_PASSED, EventKind.GATE_FAILED, EventKind.GATE_SKIPPED)


class WorkspaceState(StrEnum):
    """An attempt's git worktree: in use, or kept after a failure for inspection."""

    ACTIVE = "active"
    FAILED = "failed"
    PARKED = "parked"  # a landed attempt's, waiting for the run's next attempt to take it


class CriterionState(StrEnum):
    MET = "met"
    UNMET = "unmet"
    TO_CONFIRM = "to_confirm"
    NOT_EVALUATED = "not_evaluated"


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    bundle_id: str
    bundle_file: str | None
    bundle_hash: str | None
    argv: tuple[str, ...]
    started: float
    ended: float | None
    status: RunState
    reason: str | None
    pid: int | None
    jobs: int
    cost: float = 0.0  # what its attempts cost, where the query adds it (RunStore.runs)
    unknown_cost_steps: int = 0  # steps with an attempt of unknown cost (not in `cost`)


@dataclass(frozen=True)
class StepRecord:
    """A step's state within one run."""

    run_id: str
    step_id: str
    ws_id: str | None
    tool: str | None
    status: StepState
    updated: float | None
    message: str | None


@dataclass(frozen=True)
class AttemptRecord:
    id: int
    run_id: str
    bundle_id: str
    ws_id: str | None
    step_id: str
    tool: str | None
    attempt: int
    started: float
    ended: float | None
    exit_code: int | None
    outcome: AttemptOutcome
    failure_class: str | None
    message: str | None
    cost_usd: float | None
    tokens_in: int | None
    tokens_out: int | None
    model: str | None
    cost_source: str | None
    stdout_path: str | None
    stderr_path: str | None
    worker: str | None
    signature: str | None
    fingerprint: str | None
    fallback_from: str | None
    pid: int | None
    exit_file: str | None
    session: str | None
    run_status: RunState | None = None  # filled by queries that join the run
    saved_usd: float | None = None  # a cached attempt: what the attempt that made it cost
    cache_key: str | None = None  # the step cache key it was restored from or stored under
    charged_usd: float | None = None  # an unknown cost: what budgets count for it

    @property
    def cost_unknown(self) -> bool:
        """Its cost could not be known (state/unknown_cost.py): never shown as $0."""
        return is_unknown(self.cost_usd, self.cost_source)

    tool_session: str | None = None  # the AI tool's own session id, as it reported it
    resumed_session: str | None = None  # the tool session this attempt resumed (a stall)

    @property
    def is_running(self) -> bool:
        return self.outcome == AttemptOutcome.RUNNING

    @property
    def started_tool(self) -> bool:
        """Refused and cached attempts never ran the tool."""
        return self.outcome in STARTED_OUTCOMES


@dataclass(frozen=True)
class EventRecord:
    id: int
    run_id: str | None
    ts: float
    kind: EventKind
    step_id: str | None
    data: dict[str, Any] = field(default_factory=dict)

    @staticmethod
    def decode(data: str | None) -> dict[str, Any]:
        loaded = json.loads(data) if data else {}
        return loaded if isinstance(loaded, dict) else {}


@dataclass(frozen=True)
class StepKeyRecord:
    """A step's cache key, and its parts, at its last success in this project."""

    bundle_id: str
    step_id: str
    cache_key: str
    parts: dict[str, str]
    run_id: str | None
    recorded: float


@dataclass(frozen=True)
class BreakerRecord:
    tool: str
    state: str
    failures: int
    last_failure: float | None
    opened_at: float | None
    probe_started: float | None


@dataclass(frozen=True)
class WorkspaceRecord:
    path: str
    branch: str
    run_id: str
    bundle_id: str
    ws_id: str | None
    step_id: str
    attempt: int
    base: str
    status: WorkspaceState
    failure_class: str | None
    message: str | None
    created: float
    updated: float | None
    prepared: str | None = None  # the tree after workspace copy/setup, when they ran
