"""Watching a run from any process: RunMonitor reads state.db (WAL lets readers in while the
run writes), and render_status_tree draws the guide's bundle -> workstream -> step tree for
both the live reporter and `uet status --watch`."""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TextIO

from rich.console import Console, Group, RenderableType
from rich.text import Text

from uet_doit.bundle.loader import load_bundle
from uet_doit.errors import UsageError
from uet_doit.observe.status import RunStatus, StepStatus, run_status, step_mark
from uet_doit.state.records import (
    ACTIVE_STEP_STATES,
    FINISHED_STEP_STATES,
    RunState,
    StepState,
)
from uet_doit.state.store import RunStore
from uet_doit.tools.routing import default_known_tools

if TYPE_CHECKING:
    from uet_doit.bundle.model import Bundle

_ACTIVE = ACTIVE_STEP_STATES | {
    StepState.FAILED,
    StepState.PAUSED,
    StepState.BLOCKED,
    StepState.INTERRUPTED,
}
_LEADER_WIDTH = 40
#: in "active" mode, a workstream shows at most this many finished steps one by one
_MAX_DONE_SHOWN = 6


def is_interactive(stream: TextIO) -> bool:
    """A live display only on a real terminal, and never in CI (logs would fill with frames)."""
    ci = os.environ.get("CI", "").strip().lower()
    if ci not in ("", "0", "false", "no"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def make_console(stream: TextIO, terminal: bool) -> Console:
    """NO_COLOR (any value) turns colour off; a terminal keeps its cursor control."""
    return Console(
        file=stream,
        force_terminal=terminal,
        no_color="NO_COLOR" in os.environ,
        highlight=False,
        emoji=False,
        soft_wrap=False,
    )


def format_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m {int(seconds % 60):02d}s"
    return f"{seconds / 3600:.1f} hours"


def _money(value: float) -> str:
    return f"${value:.4f}" if 0 < value < 0.01 else f"${value:.2f}"


def _ws_state(steps: list[StepStatus]) -> tuple[str, str]:
    """A workstream's headline state (and style) from its steps' states."""
    states = {s.status for s in steps}
    done = sum(1 for s in steps if s.status in FINISHED_STEP_STATES)
    counted = f"({done}/{len(steps)} steps)"
    if not steps:
        return "EMPTY", "dim"
    if states == {StepState.SKIPPED}:
        return "SKIPPED", "dim"
    worst_first = (StepState.FAILED, StepState.BLOCKED, StepState.PAUSED, StepState.INTERRUPTED)
    for state in worst_first:  # the worst one names it
        if state in states and not states & ACTIVE_STEP_STATES:
            look = step_mark(state)
            return f"{look.label.upper()} {counted}", look.style
    if states <= FINISHED_STEP_STATES:
        return "DONE", "green"
    if states & ACTIVE_STEP_STATES or done:
        return f"IN PROGRESS {counted}", "bold cyan"
    return "PENDING", "dim"


def _step_line(step: StepStatus, now: float) -> Text:
    mark, label, style = step_mark(step.status)
    line = Text("  ", no_wrap=True, overflow="ellipsis")
    line.append(f"{mark} ", style=style)
    line.append(
        step.step_id, style="bold" if step.status in (StepState.RUNNING, StepState.RETRYING) else ""
    )
    detail = ""
    if step.status == StepState.RUNNING:
        detail = f"running {format_duration(now - step.started)}" if step.started else "running"
    elif step.status == StepState.SUCCEEDED and step.started and step.ended:
        detail = format_duration(max(0.0, step.ended - step.started))
    elif step.status == StepState.FAILED:
        detail = f"FAILED: {step.failure_class or 'error'}"
    elif (
        step.status in (StepState.RETRYING, StepState.PAUSED, StepState.BLOCKED) and step.last_error
    ):
        detail = f"{label}: {step.last_error.splitlines()[0][:80]}"
    elif step.status != StepState.SUCCEEDED:
        detail = label
    if step.silent_seconds is not None:
        detail += f", silent {format_duration(step.silent_seconds)}"
    if step.attempts > 1:
        detail += f", attempt {step.attempts}"
    if step.cost_usd is None:
        detail += ", cost unknown"
    elif step.cost_usd:
        detail += f", {_money(step.cost_usd)}"
    if detail:
        line.append(f" ({detail.lstrip(', ')})", style=style)
    return line


def render_status_tree(
    status: RunStatus,
    bundle_title: str | None = None,
    *,
    bundle: Bundle | None = None,
    expand: Literal["all", "active"] = "all",
    now: float | None = None,
) -> RenderableType:
    """The guide's "Progress Output": a headline per workstream, its steps below it.

    `expand="active"` (the live view) lists steps only for workstreams under way, so the tree
    fits a terminal; `bundle` adds workstream titles and budgets.
    """
    now = time.time() if now is None else now
    titles = {ws.ws_id: ws.title for ws in bundle.workstreams} if bundle else {}
    budgets = {ws.ws_id: ws.max_cost_usd for ws in bundle.workstreams} if bundle else {}
    title = bundle_title or (bundle.bundle_name or bundle.bundle_id if bundle else status.bundle_id)
    groups: dict[str, list[StepStatus]] = {ws: [] for ws in titles}
    for step in status.steps:
        groups.setdefault(step.ws_id or "-", []).append(step)
    lines: list[Text] = [Text(f"=== {title} ===", style="bold")]
    for ws_id, steps in groups.items():
        state, style = _ws_state(steps)
        name = f"{ws_id}: {titles[ws_id]}" if titles.get(ws_id, ws_id) != ws_id else ws_id
        head = Text(name + " ", style="bold" if style != "dim" else "dim", no_wrap=True)
        head.append("." * max(3, _LEADER_WIDTH - len(name)) + " ", style="dim")
        head.append(state, style=style)
        cost = sum(s.cost_usd if s.cost_usd is not None else s.known_cost_usd for s in steps)
        unknown = sum(1 for s in steps if s.cost_usd is None)
        budget = budgets.get(ws_id)
        if cost or budget or unknown:
            money = _money(cost) + (f" + {unknown} unknown" if unknown else "")
            head.append(f"  {money}" + (f" / {_money(budget)}" if budget else ""))
        lines.append(head)
        states = {s.status for s in steps}
        show = expand == "all" or bool(states & _ACTIVE) or state.startswith("IN PROGRESS")
        if not show:
            continue
        finished = [s for s in steps if s.status in FINISHED_STEP_STATES]
        hide = set()
        if expand == "active" and len(finished) > _MAX_DONE_SHOWN:
            hide = {s.step_id for s in finished[:-_MAX_DONE_SHOWN]}
            lines.append(Text(f"  ✔ {len(hide)} more finished", style="green dim"))
        lines.extend(_step_line(s, now) for s in steps if s.step_id not in hide)
    lines.extend(_footer(status, bundle))
    return Group(*lines)


def _footer(status: RunStatus, bundle: Bundle | None) -> list[Text]:
    budget = bundle.max_cost_usd if bundle else None
    cost = _money(status.total_cost_usd) + (f" / {_money(budget)}" if budget else "")
    if status.unknown_cost_steps:
        cost += f" + {status.unknown_cost_steps} step(s) of unknown cost"
    parts = [
        f"Progress: {status.progress_pct:.0f}% ({status.completed_count}/{status.total_count})",
        f"Cost: {cost}",
    ]
    if status.eta_seconds is not None and status.status == RunState.RUNNING:
        parts.append(f"ETA: {format_duration(status.eta_seconds)}")
    end = status.ended if status.ended else time.time()
    run = f"run {status.run_id}: {status.status} ({format_duration(end - status.started)})"
    if status.reason:
        run += f" - {status.reason}"
    lines = [Text(""), Text(" | ".join(parts), style="bold")]
    if status.concurrency:
        limits = ", ".join(f"{c['provider']} {c['limit']}" for c in status.concurrency)
        lines.append(Text(f"Concurrency (adapts to rate limits): {limits}", style="dim"))
    return [*lines, Text(run, style="dim")]


def status_text(status: RunStatus, bundle: Bundle | None = None, expand: str = "all") -> str:
    """The tree as plain text (no escape codes), for logs and tests."""
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=False, color_system=None, width=120, emoji=False)
    mode: Literal["all", "active"] = "active" if expand == "active" else "all"
    console.print(render_status_tree(status, bundle=bundle, expand=mode))
    return buf.getvalue()


def load_run_bundle(store: RunStore, run_id: str) -> Bundle | None:
    """The bundle a run ran (runs.bundle_file), or None when it can no longer be read."""
    row = store.run(run_id)
    if row is None or not row.bundle_file:
        return None
    path = Path(row.bundle_file)
    path = path if path.is_absolute() else store.root / path
    try:
        return load_bundle(path, store.root, known_tools=default_known_tools())
    except Exception:  # an edited, moved or broken bundle must not break monitoring
        return None


class RunMonitor:
    """The guide's RunMonitor: `RunMonitor(run_id).get_status()` from any process."""

    def __init__(self, run_id: str | None = None, root: Path | None = None) -> None:
        self.root = root or Path.cwd()
        self.store = RunStore(self.root)
        self.run_id = run_id
        self._bundle: Bundle | None = None
        self._bundle_loaded = False

    @classmethod
    def latest(cls, root: Path | None = None) -> RunMonitor:
        """The newest run in the project, fixed at this moment."""
        monitor = cls(None, root)
        monitor._require_store()
        monitor.run_id = monitor.store.latest_run_id()
        if monitor.run_id is None:
            raise UsageError(f"no runs recorded in {monitor.store.path}", "start one: uet run FILE")
        return monitor

    def _require_store(self) -> None:
        # opening a RunStore creates .uet/; a monitor must not create state where none is
        if not self.store.path.exists():
            msg = f"no runs recorded in {self.store.path}"
            raise UsageError(msg, "run `uet run FILE` in this project first")

    def get_status(self) -> RunStatus:
        """Now; with no run id, the latest run each time (it follows a new run)."""
        self._require_store()
        return run_status(self.store, self.run_id)

    def bundle(self) -> Bundle | None:
        if not self._bundle_loaded:
            run_id = self.run_id or self.store.latest_run_id()
            self._bundle = load_run_bundle(self.store, run_id) if run_id else None
            self._bundle_loaded = True
        return self._bundle

    def watch(
        self, interval: float = 2.0, callback: Callable[[RunStatus], None] | None = None
    ) -> RunStatus:
        """Call `callback` with a fresh status every `interval` seconds until the run ends."""
        while True:
            status = self.get_status()
            if callback is not None:
                callback(status)
            if status.status != RunState.RUNNING:
                return status
            time.sleep(interval)


def watch_status(
    run_id: str | None, interval: float, out: TextIO, root: Path | None = None
) -> RunStatus:
    """`uet status --watch`: a live tree when `out` is a terminal, else the tree printed to
    it per refresh (the caller names the stream: the library has no default one)."""
    from rich.live import Live

    monitor = RunMonitor.latest(root) if run_id is None else RunMonitor(run_id, root)
    if not is_interactive(out):

        def show(status: RunStatus) -> None:
            out.write(status_text(status, monitor.bundle()) + "\n")
            out.flush()

        return monitor.watch(interval, show)
    console = make_console(out, terminal=True)
    with Live(console=console, refresh_per_second=4, transient=False) as live:

        def redraw(status: RunStatus) -> None:
            live.update(render_status_tree(status, bundle=monitor.bundle(), expand="active"))

        final = monitor.watch(interval, redraw)
        live.update(render_status_tree(final, bundle=monitor.bundle(), expand="all"))
    return final
