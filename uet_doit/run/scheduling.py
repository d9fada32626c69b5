"""Which ready step starts first, and which steps may not run beside others. Pure.

A step's rank is (background?, -remaining path, bundle position): foreground steps before
background ones, then the step with the longest chain of work still behind it (its own
expected duration plus the longest path through the steps waiting for it), so a run's
makespan is set by its critical path rather than by listing order. Expected durations come
from history (the step's own median, else its tool and task kind's, else its tool's), else
the forecast (run/forecast/duration.py), else DEFAULT_DURATION.

`parallel_ok: false` on a workstream makes its steps a chain for scheduling (one at a time,
in bundle order); on a step, the step runs with no other step of the run. The dispatcher
(run/doit/dispatch.py) enforces both; this module only computes them.
"""

from __future__ import annotations

import logging
import statistics
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from uet_doit.bundle.effective import effective_tool
from uet_doit.bundle.graph import build_graph
from uet_doit.bundle.model import Bundle
from uet_doit.errors import UetError
from uet_doit.run.forecast.duration import duration_forecasts

if TYPE_CHECKING:
    from uet_doit.state.store import RunStore

_log = logging.getLogger(__name__)

#: seconds assumed for a step with no history
DEFAULT_DURATION = 1.0

#: what `priority` values mean for scheduling: only these start after the others
BACKGROUND = frozenset({"background"})


@dataclass(frozen=True)
class StepSchedule:
    """What the dispatcher needs of one step (kept in its doit task's meta)."""

    rank: tuple[int, float, int]
    serial: str | None = None  # ws_id of a `parallel_ok: false` workstream
    exclusive: bool = False  # the step's own `parallel_ok: false`
    remaining: float = 0.0  # seconds of work on the longest path from this step on

    def to_meta(self) -> dict[str, object]:
        return {"rank": list(self.rank), "serial": self.serial, "exclusive": self.exclusive}

    @property
    def runs(self) -> str:
        """How `uet list` and `--dry-run` say it: alone, one at a time, or nothing."""
        if self.exclusive:
            return "alone"
        if self.serial:
            return "in turn"
        return ""


@dataclass(frozen=True)
class PastDuration:
    """One succeeded attempt's wall time (from the run store)."""

    step_id: str
    tool: str | None
    seconds: float


#: step_ids with no history -> the forecast seconds of those it can forecast
Forecast = Callable[[Collection[str]], Mapping[str, float]]


def expected_durations(
    bundle: Bundle,
    past: Iterable[PastDuration],
    this_bundle: Mapping[str, float] | None = None,
    forecast: Forecast | None = None,
) -> dict[str, float]:
    """step_id -> seconds: the step's own median, else the median of its tool and task
    kind, else of its tool, else its forecast, else DEFAULT_DURATION. `past` is any
    bundle's attempts; `this_bundle` (step_id -> median) is this bundle's own steps;
    `forecast` is asked once, for the steps history knows nothing of."""
    own = dict(this_bundle or {})
    kinds = {s.step_id: s.task_kind or ws.kind for ws, s in bundle.steps()}
    by_tool_kind: dict[tuple[str | None, str | None], list[float]] = defaultdict(list)
    by_tool: dict[str | None, list[float]] = defaultdict(list)
    for p in past:
        by_tool[p.tool].append(p.seconds)
        if p.step_id in kinds:
            by_tool_kind[(p.tool, kinds[p.step_id])].append(p.seconds)
    out: dict[str, float] = {}
    for ws, step in bundle.steps():
        tool = effective_tool(bundle, ws, step)
        if step.step_id in own:
            out[step.step_id] = own[step.step_id]
        elif by_tool_kind.get((tool, kinds[step.step_id])):
            out[step.step_id] = statistics.median(by_tool_kind[(tool, kinds[step.step_id])])
        elif by_tool.get(tool):
            out[step.step_id] = statistics.median(by_tool[tool])
    unknown = [s.step_id for _, s in bundle.steps() if s.step_id not in out]
    guessed = forecast(unknown) if forecast is not None and unknown else {}
    for step_id in unknown:
        out[step_id] = guessed.get(step_id, DEFAULT_DURATION)
    return {k: max(v, 0.001) for k, v in out.items()}


def plan_schedule(
    bundle: Bundle, durations: Mapping[str, float] | None = None
) -> dict[str, StepSchedule]:
    """step_id -> its schedule; `durations` missing a step count DEFAULT_DURATION."""
    durations = durations or {}
    graph = build_graph(bundle)
    edges: dict[str, list[str]] = {n: list(d) for n, d in graph.edges.items()}
    for ws in bundle.workstreams:
        if not ws.parallel_ok:  # a chain for scheduling: each waits for the one before
            for before, after in zip(ws.steps, ws.steps[1:], strict=False):
                edges.setdefault(after.step_id, []).append(before.step_id)
    users: dict[str, list[str]] = defaultdict(list)
    for node, deps in edges.items():
        for dep in set(deps):
            users[dep].append(node)
    remaining: dict[str, float] = {}
    for node in _users_first(edges, users):
        own = durations.get(node, DEFAULT_DURATION) if graph.kinds.get(node) == "step" else 0.0
        remaining[node] = own + max((remaining.get(u, 0.0) for u in users[node]), default=0.0)
    out: dict[str, StepSchedule] = {}
    for index, (ws, step) in enumerate(bundle.steps()):
        path = remaining.get(step.step_id, DEFAULT_DURATION)
        out[step.step_id] = StepSchedule(
            rank=(1 if ws.priority in BACKGROUND else 0, -round(path, 6), index),
            serial=None if ws.parallel_ok else ws.ws_id,
            exclusive=step.parallel_ok is False,
            remaining=path,
        )
    return out


def learned_schedule(bundle: Bundle, store: RunStore) -> dict[str, StepSchedule]:
    """The schedule with durations learned from the run store, else forecast."""
    past: list[PastDuration] = []
    own: dict[str, float] = {}
    if store.exists():
        past = [PastDuration(*row) for row in store.tool_durations()]
        own = store.durations(bundle.bundle_id)

    def forecast(steps: Collection[str]) -> Mapping[str, float]:
        try:
            return duration_forecasts(bundle, store.root, steps)
        except UetError as exc:  # e.g. a broken router_config.json: the run itself says so
            _log.debug("no duration forecast: %s", exc)
            return {}

    durations = expected_durations(bundle, past, own, forecast)
    if _log.isEnabledFor(logging.DEBUG):
        for step_id, seconds in durations.items():
            _log.debug("expected duration of %s: %.2fs", step_id, seconds)
    return plan_schedule(bundle, durations)


def _users_first(edges: Mapping[str, list[str]], users: Mapping[str, list[str]]) -> list[str]:
    """Nodes ordered so that every node comes after all the nodes that wait for it."""
    nodes = set(edges) | {d for deps in edges.values() for d in deps}
    waiting = {n: len(set(users.get(n, ()))) for n in nodes}
    ready = [n for n, count in waiting.items() if count == 0]
    out: list[str] = []
    while ready:
        node = ready.pop()
        out.append(node)
        for dep in set(edges.get(node, ())):
            waiting[dep] -= 1
            if waiting[dep] == 0:
                ready.append(dep)
    return out
