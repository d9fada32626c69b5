"""A run's status, readable from any process while the run goes on (RunMonitor, `uet status`)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from uet_doit.errors import UsageError
from uet_doit.state.store import FINISHED_STEP_STATES, RunStore


@dataclass
class StepStatus:
    step_id: str
    ws_id: str | None
    tool: str | None
    status: str
    attempts: int = 0
    cost_usd: float = 0.0
    tokens_in: int = 0
    tokens_out: int = 0
    failure_class: str | None = None
    last_error: str | None = None
    started: float | None = None
    ended: float | None = None


@dataclass
class RunStatus:
    """The guide's fields (progress_pct, current_step, completed_count, total_count,
    total_cost_usd) plus each step's state."""

    run_id: str
    bundle_id: str
    status: str
    progress_pct: float
    current_step: str | None
    completed_count: int
    total_count: int
    total_cost_usd: float
    started: float
    ended: float | None
    reason: str | None = None
    eta_seconds: float | None = None
    steps: list[StepStatus] = field(default_factory=list)
    gates: list[dict[str, Any]] = field(default_factory=list)
    criteria: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_status(store: RunStore, run_id: str | None = None) -> RunStatus:
    store.mark_dead_runs()
    run_id = run_id or store.latest_run_id()
    if run_id is None:
        raise UsageError(f"no runs recorded in {store.path}", "start one with `uet run BUNDLE`")
    row = store.run(run_id)
    if row is None:
        raise UsageError(f"no run {run_id!r} in {store.path}", "list runs with `uet runs`")
    per_step: dict[str, list[Any]] = {}
    for a in store.attempts(run_id):
        per_step.setdefault(a["step_id"], []).append(a)
    steps: list[StepStatus] = []
    for s in store.run_steps(run_id):
        attempts = per_step.get(s["step_id"], [])
        last = attempts[-1] if attempts else None
        failed = [a for a in attempts if a["outcome"] == "failed"]
        steps.append(
            StepStatus(
                step_id=s["step_id"],
                ws_id=s["ws_id"],
                tool=s["tool"],
                status=s["status"],
                attempts=len([a for a in attempts if a["outcome"] != "refused"]),
                cost_usd=round(sum(a["cost_usd"] or 0.0 for a in attempts), 6),
                tokens_in=sum(a["tokens_in"] or 0 for a in attempts),
                tokens_out=sum(a["tokens_out"] or 0 for a in attempts),
                failure_class=(
                    last["failure_class"]
                    if last and last["outcome"] == "failed"
                    else (
                        failed[-1]["failure_class"] if failed and s["status"] == "failed" else None
                    )
                ),
                last_error=(
                    s["message"]
                    if s["status"] in ("failed", "paused", "blocked", "retrying")
                    else None
                ),
                started=attempts[0]["started"] if attempts else None,
                ended=last["ended"] if last else None,
            )
        )
    total = len(steps)
    done = sum(1 for s in steps if s.status in FINISHED_STEP_STATES)
    running = [s for s in steps if s.status in ("running", "retrying")]
    cost = sum(s.cost_usd for s in steps)
    eta = _eta(store, row["bundle_id"], steps, row["jobs"] or 1)
    return RunStatus(
        run_id=run_id,
        bundle_id=row["bundle_id"],
        status=row["status"],
        progress_pct=round(100.0 * done / total, 1) if total else 0.0,
        current_step=running[0].step_id if running else None,
        completed_count=done,
        total_count=total,
        total_cost_usd=round(cost, 6),
        started=row["started"],
        ended=row["ended"],
        reason=row["reason"],
        eta_seconds=eta if row["status"] == "running" else None,
        steps=steps,
        gates=_latest_events(
            store, run_id, ("gate_passed", "gate_failed", "gate_skipped"), ("scope", "index")
        ),
        criteria=_latest_events(store, run_id, ("criterion",), ("scope", "description")),
    )


def _latest_events(
    store: RunStore, run_id: str, kinds: tuple[str, ...], key: tuple[str, ...]
) -> list[dict[str, Any]]:
    """The newest event per gate (or criterion) of a run, with its outcome."""
    import json

    latest: dict[tuple[Any, ...], dict[str, Any]] = {}
    marks = ",".join("?" * len(kinds))
    for row in store.conn.execute(
        f"SELECT kind, data FROM events WHERE run_id=? AND kind IN ({marks}) ORDER BY id",
        (run_id, *kinds),
    ):
        data = json.loads(row["data"] or "{}")
        if row["kind"].startswith("gate_"):
            data["outcome"] = "warning" if data.get("warning") else row["kind"][5:]
        latest[tuple(data.get(k) for k in key)] = data
    return list(latest.values())


def _eta(store: RunStore, bundle_id: str, steps: list[StepStatus], jobs: int) -> float | None:
    """Remaining work from past durations of the same steps (else the mean so far), over -n."""
    past = store.durations(bundle_id)
    finished = [
        s.ended - s.started for s in steps if s.status == "succeeded" and s.started and s.ended
    ]
    mean = sum(finished) / len(finished) if finished else None
    now = time.time()
    remaining = 0.0
    for s in steps:
        if s.status in FINISHED_STEP_STATES or s.status == "failed":
            continue
        expected = past.get(s.step_id, mean)
        if expected is None:
            return None
        if s.status in ("running", "retrying") and s.started:
            expected = max(0.0, expected - (now - s.started))
        remaining += expected
    return round(remaining / max(1, jobs), 1)
