"""The live progress tree for `uet run` on a terminal; plain lines everywhere else.

LiveReporter keeps doit's events in memory (no store query per event) and a background
thread reads the run store twice a second for what only the store knows: retries, pauses,
costs, the ETA. rich redraws a few times per second; the run never waits for the display.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from uet_doit.observe.monitor import (
    is_interactive,
    load_run_bundle,
    make_console,
    render_status_tree,
)
from uet_doit.observe.reporting import JsonLinesReporter, PlainReporter, ReporterBase
from uet_doit.observe.status import RunStatus, StepStatus, run_status
from uet_doit.run.doit.action import StepNotStarted, StepPaused
from uet_doit.run.doit.task_names import step_of as _step_of
from uet_doit.state.records import FINISHED_STEP_STATES, RunState, StepState
from uet_doit.state.store import RunStore

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.live import Live

    from uet_doit.bundle.model import Bundle

#: how far a state has got; the store and doit's events are merged by taking the furthest
_RANK = {StepState.PENDING: 0, StepState.RUNNING: 1, StepState.RETRYING: 1}
_TERMINAL_RANK = 2


def _rank(state: StepState) -> int:
    return _RANK.get(state, _TERMINAL_RANK)


class LiveReporter(PlainReporter):
    """`--reporter live`: the guide's progress tree, redrawn while the run goes on."""

    desc = "uet: live progress tree on a terminal (plain lines when not a terminal or in CI)"
    refresh_per_second = 4
    poll_seconds = 0.5
    min_redraw_seconds = 0.1

    def __init__(self, outstream: TextIO, options: dict[str, Any]) -> None:
        super().__init__(outstream, options)
        self.store = RunStore(Path.cwd())
        self.live_mode = is_interactive(outstream)
        self._lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._events: dict[str, tuple[StepState, float]] = {}  # step -> (state, wall clock)
        self._planned: dict[str, tuple[str | None, str | None]] = {}  # step -> (ws, tool)
        self._snapshot: RunStatus | None = None
        self._snapshot_at = 0.0
        self._bundle: Bundle | None = None
        self._bundle_tried = False
        self._live: Live | None = None
        self._poller: threading.Thread | None = None
        self._stop = threading.Event()
        self._last_draw = 0.0
        self._final = False
        self._completed = False

    # -- doit reporter interface ----------------------------------------------------------
    def initialize(self, tasks: dict[str, Any], selected_tasks: list[str]) -> None:
        super().initialize(tasks, selected_tasks)
        for task in tasks.values():
            step = _step_of(task)
            if step:
                meta = self._meta(task)
                self._planned[step] = (meta.get("ws_id"), meta.get("tool"))

    def execute_task(self, task: Any) -> None:
        if not self.live_mode:
            super().execute_task(task)
            return
        ReporterBase.execute_task(self, task)
        # started here, not in initialize: doit forks its -P process workers before the
        # first task starts, and a fork must not copy a thread holding SQLite's locks
        self._start_display()
        self._note(task, StepState.RUNNING)

    def add_success(self, task: Any) -> None:
        if not self.live_mode:
            super().add_success(task)
            return
        ReporterBase.add_success(self, task)
        self._note(task, StepState.SUCCEEDED)

    def add_failure(self, task: Any, fail: Any) -> None:
        if not self.live_mode:
            super().add_failure(task, fail)
            return
        from doit.exceptions import UnmetDependency

        ReporterBase.add_failure(self, task, fail)
        # doit fails a task whose dependency failed without running it: that step is blocked
        if isinstance(fail, StepPaused):
            state = StepState.PAUSED
        elif isinstance(fail, StepNotStarted):
            state = StepState.NOT_STARTED
        else:
            state = StepState.BLOCKED if isinstance(fail, UnmetDependency) else StepState.FAILED
        self._note(task, state)

    def skip_uptodate(self, task: Any) -> None:
        if not self.live_mode:
            super().skip_uptodate(task)
            return
        ReporterBase.skip_uptodate(self, task)
        self._note(task, StepState.UP_TO_DATE)

    def skip_ignore(self, task: Any) -> None:
        super().skip_ignore(task)
        if self.live_mode:
            self._note(task, StepState.SKIPPED)

    def complete_run(self) -> None:
        if self._completed:  # doit may call it again from its `finally`
            return
        self._completed = True
        if self.live_mode:
            self._stop.set()
            if self._poller is not None:
                self._poller.join(timeout=5)
            self._poll()
            self._final = True
            if self._live is not None:
                self._live.stop()  # draws the last frame, every workstream expanded
            else:
                make_console(self.outstream, terminal=True).print(self._view())
        super().complete_run()

    # -- state ----------------------------------------------------------------------------
    def _note(self, task: Any, state: StepState) -> None:
        step = _step_of(task)
        if step is None:
            return
        with self._lock:
            self._events[step] = (state, time.time())
        now = time.monotonic()
        if self._live is not None and now - self._last_draw >= self.min_redraw_seconds:
            self._last_draw = now
            self._live.refresh()

    def _start_display(self) -> None:
        if self._live is not None:
            return
        from rich.live import Live

        with self._start_lock:  # -P thread workers report their first steps at once
            if self._live is not None or self._completed:
                return
            live = Live(
                get_renderable=self._view,
                console=make_console(self.outstream, terminal=True),
                refresh_per_second=self.refresh_per_second,
                transient=False,
                redirect_stdout=True,
                redirect_stderr=True,
            )
            live.start()
            self._poller = threading.Thread(
                target=self._poll_loop, name="uet-progress", daemon=True
            )
            self._poller.start()
            self._live = live

    def _poll_loop(self) -> None:
        while not self._stop.is_set():
            self._poll()
            self._stop.wait(self.poll_seconds)

    def _poll(self) -> None:
        """One read of the store (on the poller thread's own connection)."""
        try:
            run_id = self.run_id or self._discover_run()
            if not run_id:
                return
            self.run_id = run_id
            snapshot = run_status(self.store, run_id)
            if not self._bundle_tried:
                self._bundle_tried = True
                self._bundle = load_run_bundle(self.store, run_id)
        except Exception:  # a busy or missing store only makes the display stale
            return
        with self._lock:
            self._snapshot, self._snapshot_at = snapshot, time.time()

    def _discover_run(self) -> str | None:
        """Under plain `doit` the first step registers the run with this process's pid."""

        if not self.store.path.exists():
            return None
        return self.store.running_run_of(os.getpid())

    def current_status(self) -> RunStatus:
        """The store's last snapshot with doit's newer events laid over it."""
        with self._lock:
            snapshot, taken, events = self._snapshot, self._snapshot_at, dict(self._events)
        now = time.time()
        if snapshot is None:
            snapshot = RunStatus(
                run_id=self.run_id,
                bundle_id="",
                status=RunState.RUNNING,
                progress_pct=0.0,
                current_step=None,
                completed_count=0,
                total_count=0,
                total_cost_usd=0.0,
                started=now,
                ended=None,
            )
        steps: list[StepStatus] = []
        seen: set[str] = set()
        for s in snapshot.steps:
            seen.add(s.step_id)
            steps.append(self._merge(s, events.get(s.step_id)))
        for step_id, (ws_id, tool) in self._planned.items():
            if step_id not in seen:
                blank = StepStatus(step_id, ws_id, tool, StepState.PENDING)
                steps.append(self._merge(blank, events.get(step_id)))
        done = sum(1 for s in steps if s.status in FINISHED_STEP_STATES)
        running = [s.step_id for s in steps if s.status in (StepState.RUNNING, StepState.RETRYING)]
        eta = snapshot.eta_seconds
        return dataclasses.replace(
            snapshot,
            steps=steps,
            completed_count=done,
            total_count=len(steps),
            progress_pct=round(100.0 * done / len(steps), 1) if steps else 0.0,
            current_step=running[0] if running else None,
            eta_seconds=None if eta is None else max(0.0, eta - (now - taken)),
            status=self._headline(snapshot.status),
        )

    def _headline(self, stored: RunState) -> RunState:
        # the run row is closed only after doit returns, so the last frame decides itself
        if not self._final or stored != RunState.RUNNING:
            return stored
        return RunState.FAILED if self.counts["failed"] or self.errors else RunState.SUCCEEDED

    @staticmethod
    def _merge(step: StepStatus, event: tuple[StepState, float] | None) -> StepStatus:
        if event is None or _rank(event[0]) <= _rank(step.status):
            return step
        state, when = event
        if state == StepState.RUNNING:
            return dataclasses.replace(step, status=state, started=step.started or when)
        return dataclasses.replace(step, status=state, ended=step.ended or when)

    def _view(self) -> RenderableType:
        status = self.current_status()
        return render_status_tree(
            status, bundle=self._bundle, expand="all" if self._final else "active"
        )


def choose_reporter(name: str | None, stream: TextIO) -> type[ReporterBase]:
    """`--reporter json|plain|live`; by default live when `stream` (where the reporter will
    write) is a terminal, plain in pipes and CI."""
    if name == "json":
        return JsonLinesReporter
    if name == "plain":
        return PlainReporter
    if name == "live" or is_interactive(stream):
        return LiveReporter
    return PlainReporter
