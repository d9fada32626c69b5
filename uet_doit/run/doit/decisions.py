"""doit's decisions about steps, recorded in the run store by the run core.

doit decides some things without calling a step's action: a step is up to date, blocked by
a failed dependency, failed because an input file is missing, or ignored. doit tells only
its reporter, so the reporters uet offers are the printing reporters of observe/ wrapped
by `recording()`, which writes those decisions to the store of each task's run
(observe/recorded.py makes them). Printing reporters never write state.
"""

from __future__ import annotations

import threading
from typing import Any, TypeVar

from doit.exceptions import TaskFailed, UnmetDependency

from uet_doit.run.context import RunContext
from uet_doit.run.doit.action import Runtime, StepAction, StepNotStarted, StepPaused
from uet_doit.run.doit.task_names import step_of
from uet_doit.state.records import StepState

#: up-to-date steps are written in batches: a no-op re-run of 10k steps pays few commits
_BATCH = 500

Reporter = TypeVar("Reporter", bound=type[Any])


def _ctx_of(task: Any) -> RunContext | None:
    # the callables as the task was given them, while doit has not wrapped them in action
    # objects: an up-to-date task never needs those, and making them costs per task
    made = getattr(task, "_action_instances", None)
    given = getattr(task, "_actions", None) if made is None else None
    for action in given if given is not None else getattr(task, "actions", None) or ():
        inner = getattr(action, "py_callable", action)
        if isinstance(inner, StepAction):
            return inner.ctx
    return None


class DecisionRecorder:
    """Writes doit's decisions about step tasks to the store of each task's run.

    Under `-P thread` doit calls the reporter from its worker threads too (execute_task,
    which flushes) while the main thread records up-to-date steps: one lock keeps a row
    recorded during a flush from being dropped with the batch it joined too late."""

    def __init__(self) -> None:
        self._pending: dict[RunContext, list[tuple[Any, ...]]] = {}
        self._known: dict[RunContext, bool] = {}
        self._lock = threading.RLock()

    def _run_exists(self, ctx: RunContext) -> bool:
        if ctx not in self._known:
            self._known[ctx] = Runtime.for_context(ctx).store.run(ctx.run_id) is not None
        return self._known[ctx]

    def record(self, task: Any, state: StepState, message: str | None = None) -> None:
        step, ctx = step_of(task), _ctx_of(task)
        if step is None or ctx is None:
            return
        meta = (getattr(task, "meta", None) or {}).get("uet", {})
        with self._lock:
            rows = self._pending.setdefault(ctx, [])
            rows.append((ctx.run_id, step, state, meta.get("ws_id"), meta.get("tool"), message))
            if state != StepState.UP_TO_DATE or len(rows) >= _BATCH:
                self.flush()

    def flush(self) -> None:
        with self._lock:
            for ctx, rows in list(self._pending.items()):
                if rows and self._run_exists(ctx):
                    Runtime.for_context(ctx).store.set_step_states(rows)
                self._pending[ctx] = []

    def run_id(self, tasks: dict[str, Any]) -> str:
        for task in tasks.values():
            ctx = _ctx_of(task)
            if ctx is not None:
                return ctx.run_id
        return ""


def recording(reporter: Reporter) -> Reporter:
    """`reporter` (a doit reporter class) that also records doit's decisions about steps
    in the run store."""

    class Recording(reporter):  # type: ignore[valid-type,misc]
        desc = reporter.desc

        def __init__(self, outstream: Any, options: dict[str, Any]) -> None:
            super().__init__(outstream, options)
            self.recorder = DecisionRecorder()

        def initialize(self, tasks: dict[str, Any], selected_tasks: list[str]) -> None:
            self.run_id = self.recorder.run_id(tasks)
            super().initialize(tasks, selected_tasks)

        def execute_task(self, task: Any) -> None:
            self.recorder.flush()
            super().execute_task(task)

        def skip_uptodate(self, task: Any) -> None:
            self.recorder.record(task, StepState.UP_TO_DATE)
            super().skip_uptodate(task)

        def skip_ignore(self, task: Any) -> None:
            self.recorder.record(task, StepState.SKIPPED, "ignored (doit ignore)")
            super().skip_ignore(task)

        def add_failure(self, task: Any, fail: Any) -> None:
            super().add_failure(task, fail)
            if isinstance(fail, UnmetDependency):
                why = self.blocked_why.get(task.name, "waits for a failed step")
                self.recorder.record(task, StepState.BLOCKED, why)
            elif not isinstance(fail, StepPaused | StepNotStarted) and _action_did_not_run(fail):
                message = fail.get_msg().strip() if hasattr(fail, "get_msg") else str(fail)
                self.recorder.record(task, StepState.FAILED, message.splitlines()[-1][:500])

        def complete_run(self) -> None:
            self.recorder.flush()
            super().complete_run()

    Recording.__name__ = Recording.__qualname__ = f"Recorded{reporter.__name__}"
    made: Reporter = Recording  # type: ignore[assignment]
    return made


def _action_did_not_run(fail: Any) -> bool:
    """doit's own failures (a missing file_dep, a broken dependency) happen before the
    action; the action records its own failures, which doit reports as TaskFailed."""
    return not isinstance(fail, TaskFailed)
