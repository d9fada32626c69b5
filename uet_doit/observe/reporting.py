"""doit reporters: plain one-line-per-event output, and JSON lines for machines.

They only print. What doit decides about steps (up to date, blocked, failed before the
action ran) is recorded by the run core, which wraps them (run/doit/decisions.py).
"""

from __future__ import annotations

import json
import time
from typing import Any, TextIO

from doit.exceptions import UnmetDependency

from uet_doit.run.doit.action import StepNotStarted, StepPaused
from uet_doit.run.doit.task_names import step_of as _step_of


class ReporterBase:
    """Base: counts doit's events per kind; prints nothing itself."""

    desc = "uet: counts of doit events"

    def __init__(self, outstream: TextIO, options: dict[str, Any]) -> None:
        self.outstream = outstream
        self.options = options
        self.run_id = ""
        self.started: dict[str, float] = {}
        self.counts: dict[str, int] = {
            "succeeded": 0,
            "failed": 0,
            "up_to_date": 0,
            "blocked": 0,
            "paused": 0,
            "not_started": 0,
            "gates_failed": 0,
        }
        self.failures: list[tuple[str, str]] = []
        self.gate_blocks: dict[str, str] = {}  # failed gate / held-back ws task -> gate label
        self.blocked_why: dict[str, str] = {}  # blocked step task -> what it waits for
        self.errors: list[str] = []

    def _meta(self, task: Any) -> dict[str, Any]:
        meta: dict[str, Any] = (getattr(task, "meta", None) or {}).get("uet", {})
        return meta

    # doit reporter interface ------------------------------------------------------------
    def initialize(self, tasks: dict[str, Any], selected_tasks: list[str]) -> None:
        self.tasks = tasks

    def get_status(self, task: Any) -> None:
        """doit asks before checking a task; nothing to record yet."""

    def execute_task(self, task: Any) -> None:
        if _step_of(task):
            self.started[task.name] = time.monotonic()

    def add_success(self, task: Any) -> None:
        if _step_of(task):
            self.counts["succeeded"] += 1

    def add_failure(self, task: Any, fail: Any) -> None:
        step = _step_of(task)
        message = fail.get_msg().strip() if hasattr(fail, "get_msg") else str(fail)
        if isinstance(fail, StepPaused | StepNotStarted):
            self.counts["paused" if isinstance(fail, StepPaused) else "not_started"] += 1
            return
        gate = (getattr(task, "meta", None) or {}).get("uet_gate")
        if isinstance(fail, UnmetDependency):
            # doit's word for "a task it waits for failed": blocked, not failed
            waits = [n.split(":", 1)[-1] for n in str(fail.message).split()]
            if step:
                self.counts["blocked"] += 1
                gates = [self.gate_blocks[w] for w in waits if w in self.gate_blocks]
                why = (
                    f"blocked by gate {gates[0]}"
                    if gates
                    else (f"waits for failed: {' '.join(waits)}")
                )
                self.blocked_why[task.name] = why
            else:  # a workstream task held back by its failed gate
                for w in waits:
                    if w in self.gate_blocks:
                        self.gate_blocks[task.name.split(":", 1)[-1]] = self.gate_blocks[w]
            return
        if gate is not None:
            label = f"{gate['type']} of {gate['scope']}"
            self.gate_blocks[task.name.split(":", 1)[-1]] = label
            self.counts["gates_failed"] += 1
            self.failures.append((f"gate {label}", message))
        elif step:
            self.counts["failed"] += 1
            self.failures.append((step, message))
        else:
            self.errors.append(f"{task.name}: {message}")

    def skip_uptodate(self, task: Any) -> None:
        if _step_of(task):
            self.counts["up_to_date"] += 1

    def skip_ignore(self, task: Any) -> None:
        """Ignored tasks are recorded as skipped by the run core; nothing to count."""

    def cleanup_error(self, exception: Any) -> None:
        self.errors.append(str(exception.get_msg() if hasattr(exception, "get_msg") else exception))

    def runtime_error(self, msg: str) -> None:
        self.errors.append(msg)

    def teardown_task(self, task: Any) -> None:
        """Bundles define no teardowns."""

    def complete_run(self) -> None:
        """Subclasses print their summary here."""


class PlainReporter(ReporterBase):
    """One line per event, no escape codes: for logs, CI and pipes."""

    desc = "uet: one line per step event"

    def _line(self, text: str) -> None:
        self.outstream.write(text + "\n")
        self.outstream.flush()

    def execute_task(self, task: Any) -> None:
        super().execute_task(task)
        if _step_of(task):
            self._line(f"start  {task.name} [{self._meta(task).get('tool', '')}]")

    def add_success(self, task: Any) -> None:
        super().add_success(task)
        if _step_of(task):
            took = time.monotonic() - self.started.get(task.name, time.monotonic())
            attempts = (getattr(task, "values", None) or {}).get("attempts") or 1
            more = f", {attempts} attempts" if attempts > 1 else ""
            cached = ", from the cache" if _from_cache(task) else ""
            self._line(f"done   {task.name} ({took:.1f}s{more}{cached})")

    def add_failure(self, task: Any, fail: Any) -> None:
        super().add_failure(task, fail)
        if isinstance(fail, StepPaused):
            self._line(f"PAUSED {task.name}: {fail.message.split(' paused: ', 1)[-1]}")
            return
        if isinstance(fail, StepNotStarted):
            self._line(f"not started {task.name}: an earlier step failed (-c keeps going)")
            return
        if isinstance(fail, UnmetDependency):
            if _step_of(task):
                self._line(f"blocked {task.name}: waits for a failed step or gate")
            return
        first = self.failures[-1][1] if _step_of(task) and self.failures else str(fail)
        first_line = first.splitlines()[0] if first else ""
        self._line(f"FAILED {task.name}: {first_line}")

    def skip_uptodate(self, task: Any) -> None:
        super().skip_uptodate(task)
        if _step_of(task) and self.options.get("verbosity", 1) >= 2:
            self._line(f"skip   {task.name} (up to date)")

    def complete_run(self) -> None:
        super().complete_run()
        c = self.counts
        for step, message in self.failures:
            self.outstream.write(f"\n--- {step} ---\n{message}\n")
        for error in self.errors:
            self.outstream.write(f"\nERROR: {error}\n")
        blocked = "".join(
            f", {c[k]} {k.replace('_', ' ')}"
            for k in ("blocked", "paused", "not_started", "gates_failed")
            if c[k]
        )
        self._line(
            f"{c['succeeded']} ran, {c['up_to_date']} up to date, {c['failed']} failed{blocked}"
        )


class JsonLinesReporter(ReporterBase):
    """`--reporter json`: one JSON object per event on stdout."""

    desc = "uet: JSON lines, one per event"

    def _emit(self, event: str, task: Any = None, **data: Any) -> None:
        record: dict[str, Any] = {
            "ts": round(time.time(), 3),
            "event": event,
            "run_id": self.run_id,
        }
        if task is not None:
            record["task"] = task.name
            step = _step_of(task)
            if step:
                record["step_id"] = step
                record.update({k: v for k, v in self._meta(task).items() if v})
        record.update(data)
        self.outstream.write(json.dumps(record) + "\n")
        self.outstream.flush()

    def execute_task(self, task: Any) -> None:
        super().execute_task(task)
        if _step_of(task):
            self._emit("start", task)

    def add_success(self, task: Any) -> None:
        super().add_success(task)
        if _step_of(task):
            took = time.monotonic() - self.started.get(task.name, time.monotonic())
            self._emit("success", task, seconds=round(took, 3), cached=_from_cache(task))

    def add_failure(self, task: Any, fail: Any) -> None:
        super().add_failure(task, fail)
        self._emit(
            "failure", task, message=str(fail.get_msg() if hasattr(fail, "get_msg") else fail)
        )

    def skip_uptodate(self, task: Any) -> None:
        super().skip_uptodate(task)
        if _step_of(task):
            self._emit("up_to_date", task)

    def complete_run(self) -> None:
        super().complete_run()
        self._emit("complete", None, **self.counts, errors=self.errors)


def _from_cache(task: Any) -> bool:
    """The step's outputs were restored from the step cache (its action's values say so)."""
    return (getattr(task, "values", None) or {}).get("from_run") == "cache"
