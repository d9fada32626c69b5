"""`uet run --executor dask`: attempts run on Dask.distributed workers, uet keeps the rest.

The coordinator (`uet run`) keeps budgets, `max_parallel` slots, retries, breakers and the
store exactly as for local runs: the step policy holds a tool's slot and the budget
reservation around `submit` + `result`, so both hold across the whole cluster. Dask only
places and runs attempts. What Dask does on its own is switched off or checked:
- a task is never re-run by Dask (retries=0; allowed-failures=0 on the clusters uet starts,
  a claim file per attempt on schedulers that re-run tasks): a worker that dies is one
  failed attempt of class `worker_lost`, which uet retries;
- a tool no connected worker has fails at once, naming the tool and the workers, instead
  of waiting for ever for a resource no worker offers;
- client, scheduler and worker versions are compared at start (run/executors/dask/cluster.py);
- every future is released as soon as its result is read, so no result is recomputed when
  the worker that held it dies.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from uet_doit.errors import StateError
from uet_doit.run.context import RunContext
from uet_doit.run.executors.attempt import AttemptResult, AttemptSpec
from uet_doit.run.executors.base import AttemptHandle, DoneHandle, OnStart
from uet_doit.run.executors.dask.cluster import Cluster, open_cluster, threads_per_worker
from uet_doit.run.executors.dask.placement import WorkerBook
from uet_doit.run.executors.dask.remote_tree import GitError, ProjectTree, RemoteAnswer
from uet_doit.run.executors.dask.worker import (
    attempt_key,
    cancel_attempts,
    run_attempt_json,
    run_claimed_attempt_json,
    run_remote_attempt_json,
)
from uet_doit.state.records import AttemptOutcome
from uet_doit.tools.failures import FailureClass

#: how long a queued attempt may wait with no connected worker able to run its tool
NO_WORKER_GRACE_SECONDS = 5.0
#: how often a waiting step looks at the cluster (worker left, run stopping)
POLL_SECONDS = 0.5


class SchedulerLost(StateError):
    """The Dask scheduler went away mid-run: no step can start or report any more.

    A StateError, so the runtime stops starting steps (as when the store fails); `uet run`
    then ends the run with a message and `--resume` re-runs the steps that had not landed."""


class DaskExecutor:
    """Submits AttemptSpecs to a Dask cluster; one per `uet run`."""

    name = "dask"

    def __init__(self, cluster: Cluster, root: Path, tree: ProjectTree | None = None) -> None:
        self.cluster = cluster
        self.tree = tree  # --no-shared-fs: the project travels to the workers as git
        self._base: Any = None  # the base bundle, scattered to the cluster once
        self.client = cluster.client
        self.address = cluster.address
        self.notes = cluster.notes  # warnings for the user, printed by `uet run`
        self.workers = WorkerBook(cluster.client, root)
        self.lost: str | None = None  # why the scheduler is gone, once it is
        self._lock = threading.Lock()
        self._handles: set[DaskHandle] = set()
        self._closed = False
        self.stopping = threading.Event()  # Ctrl-C / SIGTERM of the run: stop waiting

    @classmethod
    def start(
        cls,
        root: Path,
        scheduler: str | None = None,
        workers: int = 2,
        threads: int = 1,
        *,
        shared_fs: bool = True,
    ) -> DaskExecutor:
        """Connect to `scheduler` (or start a local cluster) and check it, the shared
        filesystem included; raises a UetError saying what to do."""
        tree = None if shared_fs else ProjectTree(root)  # not a git repository: say so first
        executor = cls(open_cluster(scheduler, workers, threads), root, tree)
        try:
            if tree is None:
                executor.workers.check_shared_filesystem()
            else:
                executor.workers.refresh()
                executor._base = executor.client.scatter(tree.base_bundle(), hash=False)
        except BaseException:
            executor.close()
            raise
        return executor

    # -- Executor ------------------------------------------------------------------------
    def submit(self, spec: AttemptSpec, on_start: OnStart | None = None) -> AttemptHandle:
        """`on_start` is not called: a pid on another machine means nothing here."""
        self._check_alive()
        try:
            where = self.workers.placement(spec.tool)
            deadline = time.monotonic() + NO_WORKER_GRACE_SECONDS
            while where is None:  # look again; with no worker at all, wait a little for one
                where = self.workers.placement(spec.tool, force=True)
                if where is None and (self.workers.count() or time.monotonic() > deadline):
                    return DoneHandle(spec, self._no_worker_result(spec.tool))
                if where is None:
                    time.sleep(POLL_SECONDS)
            if self.tree is not None:
                future = self._submit_remote(spec, where)
                if isinstance(future, AttemptResult):
                    return DoneHandle(spec, future)
            else:
                future = self.client.submit(
                    run_claimed_attempt_json if self.cluster.may_rerun else run_attempt_json,
                    spec.to_json(),
                    key=attempt_key(spec),
                    pure=False,
                    retries=0,
                    **where,
                )
        except (OSError, RuntimeError) as exc:  # CommClosedError is an OSError
            raise self.scheduler_lost(exc) from None
        handle = DaskHandle(self, spec, future)
        with self._lock:
            self._handles.add(handle)
        return handle

    def _submit_remote(self, spec: AttemptSpec, where: dict[str, Any]) -> Any:
        """Snapshot the project for the attempt and send it along (no shared filesystem)."""
        assert self.tree is not None
        key = attempt_key(spec)
        try:
            snap = self.tree.snapshot(key, self.tree.isolated(spec))
        except GitError as exc:
            return AttemptResult(
                success=False,
                outcome=AttemptOutcome.FAILED,
                failure_class=FailureClass.WORKSPACE_SETUP,
                message=f"could not snapshot the project for the worker: {exc}",
            )
        return self.client.submit(
            run_remote_attempt_json,
            spec.to_json(),
            self.tree.project_id,
            self.tree.base,
            self._base,
            snap.bundle,
            snap.commit,
            key=key,
            pure=False,
            retries=0,
            **where,
        )

    def tool_available(self, tool: str) -> bool:
        """For `auto` routing: a connected worker can run `tool` (not: it is on this PATH)."""
        try:
            return self.workers.placement(tool) is not None
        except (OSError, RuntimeError):
            return False  # the scheduler is gone: submit says so

    def _no_worker_result(self, tool: str) -> AttemptResult:
        return AttemptResult(
            success=False,
            outcome=AttemptOutcome.FAILED,
            failure_class=FailureClass.NOT_INSTALLED,
            message=(
                f"no connected Dask worker has {tool}; workers: {self.workers.describe()}. "
                f'Install {tool} on a worker, or declare it: dask worker ... --resources "{tool}=1"'
            ),
        )

    def _check_alive(self) -> None:
        if self.lost is not None or self.client.status not in ("running", "connecting"):
            raise self.scheduler_lost()

    def scheduler_lost(self, exc: BaseException | None = None) -> SchedulerLost:
        """Note that the scheduler is gone; the error that stops the step saying so."""
        if self.lost is None:
            why = f" ({type(exc).__name__}: {exc})" if exc is not None else ""
            self.lost = f"lost the Dask scheduler at {self.address}{why}"
        return SchedulerLost(self.lost, "resume the run once the scheduler is back")

    def forget(self, handle: DaskHandle) -> None:
        with self._lock:
            self._handles.discard(handle)

    def cancel(self, keys: list[str]) -> None:
        """Stop these attempts wherever they run (best effort: the worker may be gone)."""
        if not keys or self.lost is not None:
            return
        try:
            self.client.run(cancel_attempts, keys, wait=True, on_error="ignore")
        except Exception:  # a worker that left: its watchdog has killed the tool already
            return

    def stop(self) -> None:
        """The run is stopping: every thread waiting on an attempt stops waiting (and
        cancels it); the cluster is closed with the run."""
        self.stopping.set()

    def close(self) -> None:
        """Stop attempts still running (Ctrl-C, an error), then the client and our cluster."""
        if self._closed:
            return
        self._closed = True
        with self._lock:
            handles = list(self._handles)
            self._handles.clear()
        self.cancel([h.key for h in handles])
        for handle in handles:
            handle.release()
        if self._base is not None:
            self._base.release()
        self.cluster.close()


class DaskHandle:
    """One attempt on the cluster. Its future is consumed once and released at once."""

    def __init__(self, executor: DaskExecutor, spec: AttemptSpec, future: Any) -> None:
        self.spec = spec
        self.key = attempt_key(spec)
        self._executor = executor
        self._future: Any = future
        self._result: AttemptResult | None = None

    def done(self) -> bool:
        return self._result is not None or (self._future is not None and self._future.done())

    def result(self) -> AttemptResult:
        if self._result is None:
            try:
                self._result = self._wait()
            except BaseException:  # Ctrl-C in this thread, the scheduler lost: stop the tool
                self.cancel()
                raise
            finally:
                self.release()
        return self._result

    def cancel(self) -> None:
        if self._future is not None and not self._future.done():
            self._executor.cancel([self.key])
        self.release()

    def release(self) -> None:
        future, self._future = self._future, None
        if future is not None:
            future.release()
        self._executor.forget(self)

    def _wait(self) -> AttemptResult:
        future, executor = self._future, self._executor
        finished = threading.Event()
        future.add_done_callback(lambda _f: finished.set())  # called in the client's thread
        unplaceable_since: float | None = None
        while True:
            if executor.stopping.is_set():  # Ctrl-C / SIGTERM, seen by another thread
                raise KeyboardInterrupt
            finished.wait(POLL_SECONDS)
            if future.done() or future.status in ("error", "cancelled", "lost"):
                return self._read(future)
            # queued for workers that have all left: fail instead of waiting for ever
            try:
                placeable = executor.workers.placement(self.spec.tool) is not None
            except (OSError, RuntimeError) as exc:
                raise executor.scheduler_lost(exc) from None
            if future.status == "pending" and not placeable:
                unplaceable_since = unplaceable_since or time.monotonic()
                if time.monotonic() - unplaceable_since > NO_WORKER_GRACE_SECONDS:
                    self.cancel()
                    return _lost_result(
                        "every Dask worker able to run "
                        f"{self.spec.tool} left while this attempt waited; workers: "
                        f"{executor.workers.describe()}",
                        "",
                    )
            else:
                unplaceable_since = None

    def _read(self, future: Any) -> AttemptResult:
        from distributed.scheduler import KilledWorker

        status = future.status
        if status == "finished":
            text = future.result()
            tree = self._executor.tree
            if tree is not None and '"patch"' in text[:200_000]:
                return tree.land(self.spec, RemoteAnswer.from_json(text))
            return AttemptResult.from_json(text)
        if status == "error":
            exc = future.exception()
            if isinstance(exc, KilledWorker):
                address = str(getattr(exc.last_worker, "address", exc.last_worker))
                name = self._executor.workers.name_of(address)
                return _lost_result(
                    f"the Dask worker {address} ({name}) died while it ran this attempt "
                    "(its tool was stopped with it)",
                    name,
                )
            return AttemptResult(
                success=False,
                outcome=AttemptOutcome.FAILED,
                failure_class=FailureClass.UNKNOWN,
                message=f"the Dask worker could not run the attempt: {type(exc).__name__}: {exc}",
            )
        if status == "lost":  # it ran, but the worker holding its result died before we read it
            return _lost_result("the Dask worker that ran this attempt died before it answered", "")
        # cancelled: the scheduler went away, or the run is closing
        raise self._executor.scheduler_lost()


def _lost_result(message: str, worker: str) -> AttemptResult:
    return AttemptResult(
        success=False,
        outcome=AttemptOutcome.FAILED,
        failure_class=FailureClass.WORKER_LOST,
        message=message,
        worker=worker,
    )


# -- the executor of the running `uet run` ---------------------------------------------------


@contextmanager
def dask_session(ctx: RunContext, jobs: int) -> Iterator[DaskExecutor]:
    """Start the cluster (or connect) for one run and close it after, whatever happens.
    The run's Runtime holds it (run/doit/action.py)."""
    executor = DaskExecutor.start(
        ctx.root_path,
        ctx.scheduler,
        ctx.dask_workers,
        threads_per_worker(jobs, ctx.dask_workers),
        shared_fs=ctx.shared_fs,
    )
    try:
        yield executor
    finally:
        executor.close()
