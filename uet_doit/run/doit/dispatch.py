"""doit's task dispatcher, choosing by rank and honouring `parallel_ok: false`.

doit hands a free worker the oldest ready task (a FIFO), and has no hook for choosing
another. `RankedDispatcher` keeps doit's dispatcher and only changes two things: its ready
queue is a heap ordered by each step's rank (run/scheduling.py, kept in the task's
`meta["uet"]["sched"]`), and a step that may not run now (its serial workstream has a step
running, or it or a running step must run alone) waits until a running step ends, as doit
tasks wait for their dependencies. Tasks without a rank (groups, gates, other dodo tasks)
come first, in doit's own order, so other tasks are dispatched exactly as before.

`install()` puts it in place of doit's for `doit run` (uet run and plain doit alike): doit
builds its dispatcher in `doit.cmd_run` through `TaskControl.task_dispatcher`.
"""

from __future__ import annotations

import heapq
import itertools
import logging
from collections.abc import Iterator
from typing import Any

import doit.cmd_run
from doit.control import TaskControl, TaskDispatcher
from doit.task import Task

_FIRST = (-1, 0.0, 0)  # tasks without a rank
_log = logging.getLogger(__name__)


def _sched(task: Task) -> dict[str, Any]:
    uet = (task.meta or {}).get("uet")
    sched = uet.get("sched") if isinstance(uet, dict) else None
    return sched if isinstance(sched, dict) else {}


class RankedQueue:
    """The `ready` deque doit's dispatcher uses (append, popleft, truth), as a heap."""

    def __init__(self) -> None:
        self._heap: list[tuple[tuple[Any, ...], int, Any]] = []
        self._seq = itertools.count()

    def append(self, node: Any) -> None:
        rank = tuple(_sched(node.task).get("rank") or _FIRST)
        heapq.heappush(self._heap, (rank, next(self._seq), node))

    def popleft(self) -> Any:
        return heapq.heappop(self._heap)[2]

    def __bool__(self) -> bool:
        return bool(self._heap)

    def __len__(self) -> int:
        return len(self._heap)


class RankedDispatcher(TaskDispatcher):  # type: ignore[misc]
    """doit's dispatcher with a ranked ready queue and the `parallel_ok` waits."""

    def __init__(self, tasks: Any, targets: Any, selected_tasks: Any) -> None:
        super().__init__(tasks, targets, selected_tasks)
        self.ready = RankedQueue()
        self.running: set[str] = set()  # step tasks handed out, not yet processed
        self.serial_busy: dict[str, str] = {}  # serial ws_id -> its running step task
        self.alone: str | None = None  # the running `parallel_ok: false` step
        self.held: list[Any] = []  # nodes waiting for a running step to end
        self.alone_waiting: set[str] = set()

    def _blocked(self, task: Task) -> bool:
        sched = _sched(task)
        if not sched:
            return False
        if self.alone is not None:
            return True
        if sched.get("exclusive"):
            if self.running:
                self.alone_waiting.add(task.name)
                return True
            return False
        if self.alone_waiting:  # let the running steps drain for the one that runs alone
            return True
        serial = sched.get("serial")
        return bool(serial) and serial in self.serial_busy

    def _add_task(self, node: Any) -> Iterator[Any]:
        for item in super()._add_task(node):
            if isinstance(item, Task) and _sched(item) and item.name not in self.running:
                while self._blocked(item):
                    _log.debug("hold %s: %s", item.name, self._why_blocked(item))
                    self.held.append(node)
                    yield "wait"
                self._start(item)
            yield item

    def _why_blocked(self, task: Task) -> str:
        if self.alone is not None:
            return f"{self.alone} runs alone (parallel_ok: false)"
        if _sched(task).get("exclusive"):
            return f"it runs alone: waiting for {len(self.running)} running step(s)"
        if self.alone_waiting:
            return f"{', '.join(sorted(self.alone_waiting))} waits to run alone"
        return f"{self.serial_busy.get(str(_sched(task).get('serial')))} runs in its workstream"

    def _start(self, task: Task) -> None:
        sched = _sched(task)
        _log.debug(
            "dispatch %s: rank %s, %d running, %d ready",
            task.name,
            sched.get("rank"),
            len(self.running),
            len(self.ready),
        )
        self.running.add(task.name)
        if sched.get("exclusive"):
            self.alone = task.name
            self.alone_waiting.discard(task.name)
        serial = sched.get("serial")
        if serial:
            self.serial_busy[str(serial)] = task.name

    def _update_waiting(self, processed: Any) -> None:
        super()._update_waiting(processed)
        if processed is None or processed.task.name not in self.running:
            return
        name = processed.task.name
        self.running.discard(name)
        if self.alone == name:
            self.alone = None
        for ws_id, running in list(self.serial_busy.items()):
            if running == name:
                del self.serial_busy[ws_id]
        for node in self.held:  # each looks again; those still blocked wait again
            if node in self.waiting:
                self.waiting.remove(node)
                self.ready.append(node)
        self.held = []


class RankedTaskControl(TaskControl):  # type: ignore[misc]
    def task_dispatcher(self) -> RankedDispatcher:
        assert self.selected_tasks is not None, "must call 'process' before this"
        return RankedDispatcher(self.tasks, self.targets, self.selected_tasks)


def install() -> None:
    """Make `doit run` in this process dispatch with ranks (idempotent)."""
    doit.cmd_run.TaskControl = RankedTaskControl
