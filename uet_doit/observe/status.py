"""A run's status, readable from any process while the run goes on (RunMonitor, `uet status`)."""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

from uet_doit.errors import UsageError
from uet_doit.state.records import (
    ACTIVE_STEP_STATES,
    DONE_STEP_STATES,
    FINISHED_STEP_STATES,
    GATE_EVENTS,
    AttemptOutcome,
    AttemptRecord,
    EventKind,
    RunState,
    StepState,
)
from uet_doit.state.store import RunStore
from uet_doit.state.unknown_cost import cost_with_unknown, unknown_reason


class StepMark(NamedTuple):
    """How a step state looks: a symbol for the live tree, a word for plain text, a style."""

    symbol: str
    label: str
    style: str


#: step state -> its look, for every renderer (`uet status`, the live tree, `--watch`);
#: the labels are what `uet status` has always printed
STEP_MARKS: dict[str, StepMark] = {
    "succeeded": StepMark("✔", "done", "green"),
    "up_to_date": StepMark("≡", "up to date", "green dim"),
    "running": StepMark("▶", "running", "bold cyan"),
    "pending": StepMark("…", "waiting", "dim"),
    "retrying": StepMark("↻", "retrying", "bold yellow"),
    "failed": StepMark("✖", "FAILED", "bold red"),
    "skipped": StepMark("⤼", "skipped", "dim"),
    "paused": StepMark("⏸", "paused", "magenta"),
    "blocked": StepMark("⛔", "blocked", "red"),
    "interrupted": StepMark("✖", "interrupted", "yellow"),
}

#: completion-criterion state -> its checkbox, in the run's output and in `uet status`
CRITERION_MARKS: dict[str, str] = {
    "met": "[x]",
    "unmet": "[!]",
    "to_confirm": "[ ]",
    "not_evaluated": "[-]",
}


def step_mark(state: str) -> StepMark:
    """The look of a step state; an unknown state shows as itself rather than failing."""
    return STEP_MARKS.get(state, StepMark("?", state, ""))


def criterion_line(criterion: dict[str, Any]) -> str:
    """`[!] scope: description (UNMET: detail)`: one criterion as the run and status print it."""
    state = str(criterion.get("state"))
    detail = criterion.get("detail") or ""
    note = {
        "to_confirm": " (to confirm)",
        "not_evaluated": " (not evaluated: steps not done)",
        "unmet": f" (UNMET: {detail})" if detail else " (UNMET)",
        "met": f" ({criterion['reviewer']}: {detail})"
        if detail and criterion.get("reviewer")
        else "",
    }.get(state, "")
    mark = CRITERION_MARKS.get(state, "[?]")
    return f"{mark} {criterion.get('scope')}: {criterion.get('description')}{note}"


@dataclass
class StepStatus:
    step_id: str
    ws_id: str | None
    tool: str | None
    status: StepState
    attempts: int = 0
    #: None when an attempt's cost is unknown (the reason is in `cost_unknown_reason`)
    cost_usd: float | None = 0.0
    tokens_in: int = 0
    tokens_out: int = 0
    failure_class: str | None = None
    last_error: str | None = None
    started: float | None = None
    ended: float | None = None
    worker: str | None = None  # host:pid of the process that ran the latest attempt
    # the failure class of each attempt that started, in order (None: it succeeded/ran)
    attempt_classes: list[str | None] = field(default_factory=list)
    cached: bool = False  # its outputs came from the step cache in this run
    saved_usd: float = 0.0  # what the attempt that made the cached outputs cost
    known_cost_usd: float = 0.0  # the attempts whose cost is known
    cost_unknown_attempts: int = 0
    cost_unknown_reason: str | None = None
    # running with no output for at least half its stall_timeout_seconds: for how long
    silent_seconds: float | None = None


@dataclass
class RunStatus:
    """The guide's fields (progress_pct, current_step, completed_count, total_count,
    total_cost_usd) plus each step's state."""

    run_id: str
    bundle_id: str
    status: RunState
    progress_pct: float
    current_step: str | None
    completed_count: int  # steps done (succeeded now, or up to date)
    total_count: int
    total_cost_usd: float
    started: float
    ended: float | None
    reason: str | None = None
    eta_seconds: float | None = None
    skipped_count: int = 0
    steps: list[StepStatus] = field(default_factory=list)
    gates: list[dict[str, Any]] = field(default_factory=list)
    criteria: list[dict[str, Any]] = field(default_factory=list)
    cached_count: int = 0  # steps restored from the step cache
    saved_usd: float = 0.0  # what they cost when they were made
    #: steps with an attempt of unknown cost: `total_cost_usd` leaves them out
    unknown_cost_steps: int = 0

    @property
    def cost_text(self) -> str:
        """`$1.2345`, or `$1.2345 + 2 steps of unknown cost`."""
        return cost_with_unknown(self.total_cost_usd, self.unknown_cost_steps)

    # each provider's adaptive concurrency: [{provider, limit, why}], where it changed
    concurrency: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def silent_for(stall_timeout: float | None, last_sign: float, now: float) -> float | None:
    """How long a running attempt has been silent, once that is half its stall timeout."""
    if not stall_timeout:
        return None
    quiet = now - last_sign
    return round(quiet, 1) if quiet >= stall_timeout / 2 else None


def _silence(store: RunStore, attempt: AttemptRecord | None) -> float | None:
    """A running attempt's silence: since its logs last grew (or it started)."""
    if attempt is None or attempt.outcome != AttemptOutcome.RUNNING:
        return None
    try:
        stall = json.loads(store.attempt_spec(attempt.id) or "{}").get("stall_timeout")
    except ValueError:
        return None
    signs = [attempt.started]
    for log in (attempt.stdout_path, attempt.stderr_path):
        if log:
            with contextlib.suppress(OSError):
                signs.append(os.stat(log).st_mtime)
    return silent_for(stall, max(signs), time.time())


def run_status(store: RunStore, run_id: str | None = None) -> RunStatus:
    store.mark_dead_runs()
    run_id = run_id or store.latest_run_id()
    if run_id is None:
        raise UsageError(f"no runs recorded in {store.path}", "start one with `uet run BUNDLE`")
    row = store.run(run_id)
    if row is None:
        raise UsageError(f"no run {run_id!r} in {store.path}", "list runs with `uet runs`")
    per_step: dict[str, list[AttemptRecord]] = {}
    for a in store.attempts(run_id):
        per_step.setdefault(a.step_id, []).append(a)
    steps: list[StepStatus] = []
    for s in store.run_steps(run_id):
        attempts = per_step.get(s.step_id, [])
        started = [a for a in attempts if a.started_tool]
        last = started[-1] if started else (attempts[-1] if attempts else None)
        failed = [a for a in attempts if a.outcome == AttemptOutcome.FAILED]
        failure_class = None
        if last is not None and last.outcome in (AttemptOutcome.FAILED, AttemptOutcome.REFUSED):
            failure_class = last.failure_class
        elif failed and s.status == StepState.FAILED:
            failure_class = failed[-1].failure_class
        steps.append(
            StepStatus(
                step_id=s.step_id,
                ws_id=s.ws_id,
                tool=s.tool,
                status=s.status,
                attempts=len(started),
                **_step_cost(attempts),
                tokens_in=sum(a.tokens_in or 0 for a in attempts),
                tokens_out=sum(a.tokens_out or 0 for a in attempts),
                failure_class=failure_class,
                last_error=(
                    s.message
                    if s.status
                    in (
                        StepState.FAILED,
                        StepState.PAUSED,
                        StepState.BLOCKED,
                        StepState.RETRYING,
                        StepState.SKIPPED,  # `skip: done`: why it was not run
                    )
                    else None
                ),
                started=started[0].started if started else None,
                ended=last.ended if last else None,
                worker=last.worker if last else None,
                attempt_classes=[a.failure_class for a in started],
                cached=any(a.outcome == AttemptOutcome.CACHED for a in attempts),
                saved_usd=round(sum(a.saved_usd or 0.0 for a in attempts), 6),
                silent_seconds=_silence(store, last) if s.status == StepState.RUNNING else None,
            )
        )
    total = len(steps)
    done = sum(1 for s in steps if s.status in DONE_STEP_STATES)
    skipped = sum(1 for s in steps if s.status == StepState.SKIPPED)
    running = [s for s in steps if s.status in (StepState.RUNNING, StepState.RETRYING)]
    # every attempt of the run whose cost is known, reviews included (they are attempts)
    cost = sum(a.cost_usd or 0.0 for attempts in per_step.values() for a in attempts)
    eta = _eta(store, row.bundle_id, steps, row.jobs)
    return RunStatus(
        run_id=run_id,
        bundle_id=row.bundle_id,
        status=row.status,
        progress_pct=round(100.0 * done / (total - skipped), 1) if total > skipped else 0.0,
        current_step=running[0].step_id if running else None,
        completed_count=done,
        total_count=total,
        total_cost_usd=round(cost, 6),
        started=row.started,
        ended=row.ended,
        reason=row.reason,
        eta_seconds=eta if row.status == RunState.RUNNING else None,
        skipped_count=skipped,
        steps=steps,
        gates=_latest_events(store, run_id, GATE_EVENTS, ("scope", "index")),
        criteria=_latest_events(store, run_id, (EventKind.CRITERION,), ("scope", "description")),
        cached_count=sum(1 for s in steps if s.cached),
        saved_usd=round(sum(s.saved_usd for s in steps), 6),
        unknown_cost_steps=sum(1 for s in steps if s.cost_unknown_attempts),
        concurrency=_latest_events(store, run_id, (EventKind.CONCURRENCY,), ("provider",)),
    )


def _step_cost(attempts: list[AttemptRecord]) -> dict[str, Any]:
    """A step's cost fields: null when an attempt's cost is unknown, never $0."""
    known = round(sum(a.cost_usd or 0.0 for a in attempts), 6)
    unknown = [a for a in attempts if a.cost_unknown]
    return {
        "cost_usd": None if unknown else known,
        "known_cost_usd": known,
        "cost_unknown_attempts": len(unknown),
        "cost_unknown_reason": (
            unknown_reason(unknown[-1].cost_source, unknown[-1].model) if unknown else None
        ),
    }


def _latest_events(
    store: RunStore, run_id: str, kinds: tuple[EventKind, ...], key: tuple[str, ...]
) -> list[dict[str, Any]]:
    """The newest event per gate (or criterion) of a run, with its outcome."""
    latest: dict[tuple[Any, ...], dict[str, Any]] = {}
    for event in store.events(run_id, kinds=kinds):
        data = dict(event.data)
        if event.kind in GATE_EVENTS:
            data["outcome"] = "warning" if data.get("warning") else event.kind.value[5:]
        latest[tuple(data.get(k) for k in key)] = data
    return list(latest.values())


def _eta(store: RunStore, bundle_id: str, steps: list[StepStatus], jobs: int) -> float | None:
    """Remaining work from past durations of the same steps (else the mean so far), over -n."""
    past = store.durations(bundle_id)
    finished = [
        s.ended - s.started
        for s in steps
        if s.status == StepState.SUCCEEDED and s.started and s.ended
    ]
    mean = sum(finished) / len(finished) if finished else None
    now = time.time()
    remaining = 0.0
    for s in steps:
        if s.status in FINISHED_STEP_STATES or s.status == StepState.FAILED:
            continue
        expected = past.get(s.step_id, mean)
        if expected is None:
            return None
        if s.status in ACTIVE_STEP_STATES and s.started:
            expected = max(0.0, expected - (now - s.started))
        remaining += expected
    return round(remaining / max(1, jobs), 1)
