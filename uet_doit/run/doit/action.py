"""The doit action of every step, and the Runtime of the run it belongs to.

`StepAction` holds only plain data (the step's spec and the run's context), so `-P process`
can pickle it. It asks the step policy for an outcome and turns it into doit's terms: a
dict of values on success, TaskFailed (or one of its kinds below) otherwise.
"""

from __future__ import annotations

import contextlib
import inspect
import multiprocessing.util
import os
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from doit.exceptions import TaskFailed

from uet_doit.errors import StateError, UetError
from uet_doit.run.context import RunContext
from uet_doit.run.executors.base import Executor, LocalExecutor
from uet_doit.run.extensions import StepExtension, StepOutcome
from uet_doit.run.policy import SlotProvider, StepPolicy, local_slots
from uet_doit.run.providers import ProviderGate
from uet_doit.run.resilience import SystemClock
from uet_doit.run.step_spec import StepSpec
from uet_doit.state.records import EventKind, StepState
from uet_doit.state.store import RunStore
from uet_doit.tools.process import ToolProcesses, stop_every
from uet_doit.tools.routing import AdapterRegistry


class StepPaused(TaskFailed):  # type: ignore[misc]
    """Not started: a budget around the step is spent (pause_and_notify)."""


class StepNotStarted(TaskFailed):  # type: ignore[misc]
    """Not started: an earlier step failed and the run does not keep going."""


#: The one process-level lookup of run state: how a step's action finds its run's Runtime,
#: by (session, pid). A `-P process` worker is a fork of the runner: it inherits the
#: runner's entries under the runner's pid, never uses them, and opens its own. An entry is
#: added when a run (or a worker's part of it) starts and removed when it closes.
_LIVE: dict[tuple[str, int], Runtime] = {}
_LIVE_LOCK = threading.Lock()


class Runtime:
    """One run's live state in this process: the store's connections, the adapters, the
    executor, the slots, the tools it has running (their process groups and its reaper)
    and its extensions. Opened when the run starts, closed when it ends however it ends;
    found from the RunContext (`for_context`)."""

    def __init__(self, ctx: RunContext, executor: Executor | None = None) -> None:
        root = ctx.root_path
        self.ctx = ctx
        self.store = RunStore(root)
        self.tools = AdapterRegistry(root)
        self.processes = ToolProcesses(ctx.session[:12])
        self._owns_executor = executor is None
        self.executor: Executor = executor or _executor_for(ctx, self.tools, self.processes)
        self.slots: SlotProvider = local_slots(root / ".uet")
        self.clock = SystemClock()
        self.providers = ProviderGate(self._concurrency_changed)
        self.extensions: list[StepExtension] = []  # worktrees, cache: chosen from ctx
        from uet_doit.run.step_cache.extension import cache_extension  # lazy: start-up time

        cache = cache_extension(ctx, self.tools)
        if cache is not None:
            self.extensions.append(cache)
        from uet_doit.run.review.reviewer import StepReview  # lazy: start-up time

        review = StepReview(self)
        if ctx.landing_branch:
            from uet_doit.run.workspaces.worktrees import (  # lazy: start-up time
                WorktreeIsolation,
                WorktreeJudge,
            )

            # scope and tamper checks, then the paid review, then the landing
            isolation = WorktreeIsolation(ctx, self.store, self.processes)
            self.extensions += [WorktreeJudge(isolation), review, isolation]
        else:
            self.extensions.append(review)
        from uet_doit.run.workspaces.confine import Confinement  # lazy: start-up time

        self.extensions.append(Confinement(ctx, self.store))  # after the worktree is made
        self.registered = False
        self.broken: str | None = None  # the store failed: no new step starts

    def _concurrency_changed(self, provider: str, limit: int, why: str) -> None:
        self.store.event(
            self.ctx.run_id, EventKind.CONCURRENCY, None, provider=provider, limit=limit, why=why
        )

    @classmethod
    @contextlib.contextmanager
    def opened(cls, ctx: RunContext, executor: Executor | None = None) -> Iterator[Runtime]:
        """The run's live state from its start to its end (an error or Ctrl-C included)."""
        runtime = cls(ctx, executor)
        with _LIVE_LOCK:
            _LIVE[(ctx.session, os.getpid())] = runtime
        try:
            yield runtime
        finally:
            runtime.close()

    @classmethod
    def for_context(cls, ctx: RunContext) -> Runtime:
        """The run's Runtime in this process; opened here on first use by plain `doit`
        runs and `-P process` workers, which have no start of their own to open it at."""
        key = (ctx.session, os.getpid())
        with _LIVE_LOCK:
            runtime = _LIVE.get(key)
            if runtime is None:
                runtime = _LIVE[key] = cls(ctx)
        return runtime

    @staticmethod
    def live() -> list[Runtime]:
        """The runs open in this process now."""
        pid = os.getpid()
        with _LIVE_LOCK:
            return [runtime for (_, owner), runtime in _LIVE.items() if owner == pid]

    def close(self) -> None:
        """The run is over: it leaves the registry, its reaper exits, its store connections
        close, so a process running many runs keeps nothing of old ones."""
        with _LIVE_LOCK:
            key = (self.ctx.session, os.getpid())
            if _LIVE.get(key) is self:
                del _LIVE[key]
        self.processes.close()
        if self._owns_executor:
            self.executor.close()
        self.store.close()

    def register_run(self) -> None:
        """Plain `doit` runs have no run record until their first step: make it."""
        if not self.registered:
            self.store.ensure_run(self.ctx.run_id, self.ctx.bundle_id, self.ctx.runner_pid)
            self.registered = True


def stop_every_run() -> None:
    """Ctrl-C or SIGTERM of this process: the tools of every run in it are killed (and what
    they started outside their process groups); no run starts another."""
    runtimes = Runtime.live()
    for runtime in runtimes:
        runtime.executor.stop()
    stop_every(runtime.processes for runtime in runtimes)


def close_runs(contexts: Iterable[RunContext]) -> None:
    """Close the Runtimes plain `doit` opened on first use (at its exit)."""
    pid = os.getpid()
    for ctx in contexts:
        with _LIVE_LOCK:
            runtime = _LIVE.get((ctx.session, pid))
        if runtime is not None:
            runtime.close()


class StepAction:
    """A step's doit action. Its StepSpec is built when the step first needs it, so a no-op
    re-run of many steps builds none; pickling (for doit's process workers) builds it and
    sends only the spec and the run's context."""

    # doit inspects every action's signature to pick keyword arguments; say "none" up front
    __signature__ = inspect.Signature()

    def __init__(
        self,
        spec: StepSpec | None,
        ctx: RunContext,
        build: Callable[[], StepSpec] | None = None,
    ) -> None:
        self._spec = spec
        self._build = build
        self.ctx = ctx

    @property
    def spec(self) -> StepSpec:
        if self._spec is None:
            assert self._build is not None
            self._spec, self._build = self._build(), None
        return self._spec

    def __getstate__(self) -> dict[str, Any]:
        return {"_spec": self.spec, "_build": None, "ctx": self.ctx}

    def __repr__(self) -> str:  # shown by `doit info`
        return f"<uet step {self.spec.step_id} via {self.spec.tool}>"

    def __call__(self) -> dict[str, Any] | TaskFailed:
        runtime = Runtime.for_context(self.ctx)
        if runtime.broken:
            return StepNotStarted(f"not started: {runtime.broken}")
        try:
            runtime.register_run()
            policy = StepPolicy(
                self.spec,
                self.ctx,
                runtime.store,
                runtime.tools,
                runtime.clock,
                runtime.executor,
                runtime.slots,
                runtime.extensions,
                runtime.providers,
            )
            outcome = policy.run()
        except StateError as exc:  # e.g. disk full: stop cleanly, keep what is recorded
            runtime.broken = exc.message
            return TaskFailed(f"{self.spec.step_id}: {exc.render()}")
        except UetError as exc:  # e.g. a broken custom adapter: a message, no traceback
            return TaskFailed(f"{self.spec.step_id}: {exc.render()}")
        return to_doit(outcome, self.ctx.run_id)


def _executor_for(ctx: RunContext, tools: AdapterRegistry, processes: ToolProcesses) -> Executor:
    """Attempts run here; `uet run --executor dask` gives its Runtime the cluster it opened."""
    if ctx.executor == "dask":
        raise UetError(
            "this step was compiled for --executor dask, but no Dask cluster is open",
            "run it with `uet run BUNDLE --executor dask`",
        )
    return LocalExecutor(tools.resolver(), processes)


def to_doit(outcome: StepOutcome, run_id: str) -> dict[str, Any] | TaskFailed:
    """The one place a StepOutcome becomes doit's return value."""
    if outcome.state == StepState.SUCCEEDED:
        values: dict[str, Any] = {"run_id": run_id, "attempts": outcome.attempts}
        if outcome.tool:
            values["tool"] = outcome.tool
        if outcome.origin:
            values["from_run"] = outcome.origin
        return values
    if outcome.state == StepState.PAUSED:
        return StepPaused(outcome.message)
    if outcome.state == StepState.NOT_STARTED:
        return StepNotStarted(outcome.message)
    return TaskFailed(outcome.message)


class _WorkerSetup:
    """Runs in every forked doit worker right after the fork: the worker dies with its
    runner (PR_SET_PDEATHSIG), so none lingers blocked on a dead queue, and SIGTERM (doit's
    Ctrl-C clean-up) becomes KeyboardInterrupt, which stops the running tool."""

    def __call__(self, _: object) -> None:
        import ctypes

        parent = os.getppid()

        def interrupt(signum: int, frame: Any) -> None:
            raise KeyboardInterrupt

        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, interrupt)
        with contextlib.suppress(OSError, AttributeError):  # prctl is Linux only
            ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the runner died before prctl took effect
            os._exit(1)


_WORKER_SETUP = _WorkerSetup()


def install_worker_setup() -> None:
    """Called by whoever starts doit (uet run, dodo.py), never at import."""
    multiprocessing.util.register_after_fork(_WORKER_SETUP, _WORKER_SETUP)
