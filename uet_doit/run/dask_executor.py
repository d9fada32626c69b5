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
- client, scheduler and worker versions are compared at start;
- every future is released as soon as its result is read, so no result is recomputed when
  the worker that held it dies.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from uet_doit.errors import StateError, UetError, UsageError
from uet_doit.run.attempt import AttemptResult, AttemptSpec
from uet_doit.run.context import RunContext
from uet_doit.run.dask_worker import (
    attempt_key,
    cancel_attempts,
    describe_worker,
    run_attempt_json,
    run_claimed_attempt_json,
)
from uet_doit.run.executor import AttemptHandle, OnStart
from uet_doit.run.step_spec import LOCAL_TOOLS
from uet_doit.state.records import AttemptOutcome
from uet_doit.tools.failures import FailureClass

#: how long a queued attempt may wait with no connected worker able to run its tool
NO_WORKER_GRACE_SECONDS = 5.0
#: how long `uet run --scheduler` waits for a first worker to connect
FIRST_WORKER_TIMEOUT = 30.0
#: how often a waiting step looks at the cluster (worker left, run stopping)
POLL_SECONDS = 0.5
#: how long the coordinator's picture of the workers is trusted before it asks again
REFRESH_SECONDS = 1.0
INSTALL_HINT = "install it where uet runs: pip install 'uet-doit[dask]'"


class SchedulerLost(StateError):
    """The Dask scheduler went away mid-run: no step can start or report any more.

    A StateError, so the runtime stops starting steps (as when the store fails); `uet run`
    then ends the run with a message and `--resume` re-runs the steps that had not landed."""


@dataclass(frozen=True)
class WorkerInfo:
    address: str
    name: str  # host:pid
    resources: dict[str, float]
    sees_project: bool

    def label(self, tools: dict[str, bool]) -> str:
        if self.resources:
            have = ",".join(f"{k}={v:g}" for k, v in sorted(self.resources.items()))
            return f"{self.address} ({self.name}, resources {have})"
        found = ", ".join(sorted(t for t, ok in tools.items() if ok)) or "none of the AI tools"
        return f"{self.address} ({self.name}, on PATH: {found})"


class DaskExecutor:
    """Submits AttemptSpecs to a Dask cluster; one per `uet run`."""

    name = "dask"

    def __init__(self, client: Any, cluster: Any, root: Path, address: str) -> None:
        self.client = client
        self.cluster = cluster  # a LocalCluster we started, else None
        self.root = root
        self.address = address
        self.lost: str | None = None  # why the scheduler is gone, once it is
        self.notes: list[str] = []  # warnings for the user, printed by `uet run`
        self.may_rerun = False  # the scheduler re-runs tasks of lost workers: claim attempts
        self._lock = threading.Lock()
        self._workers: dict[str, WorkerInfo] = {}
        self._tools: dict[str, dict[str, bool]] = {}  # worker address -> tool -> on PATH
        self._handles: set[DaskHandle] = set()
        self._refreshed_at = -math.inf
        self._closed = False

    # -- start ---------------------------------------------------------------------------
    @classmethod
    def start(
        cls, root: Path, scheduler: str | None = None, workers: int = 2, threads: int = 1
    ) -> DaskExecutor:
        """Connect to `scheduler`, or start a LocalCluster of `workers` processes on
        127.0.0.1 (dashboard off), then check versions and the shared filesystem."""
        try:
            import dask
            import distributed
        except ImportError as exc:
            msg = f"--executor dask needs the dask extra ({exc})"
            raise UsageError(msg, INSTALL_HINT) from None
        _quiet_dask_logs()
        cluster: Any = None
        api: Any = distributed  # typed, but its constructors are not annotated
        client: Any
        with dask.config.set(
            {
                "distributed.scheduler.allowed-failures": 0,
                "distributed.worker.daemon": False,
                "distributed.admin.system-monitor.gil.enabled": False,
            }
        ):
            try:
                if scheduler is None:
                    cluster = api.LocalCluster(
                        n_workers=workers,
                        threads_per_worker=threads,
                        processes=True,
                        host="127.0.0.1",
                        scheduler_port=0,
                        dashboard_address=None,
                        scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
                        worker_dashboard_address=None,
                        silence_logs=40,
                    )
                    client = api.Client(cluster, set_as_default=False)
                else:
                    client = api.Client(scheduler, timeout=10, set_as_default=False)
            except (OSError, TimeoutError, RuntimeError) as exc:
                if cluster is not None:
                    cluster.close()
                where = (
                    f"reach the Dask scheduler at {scheduler}"
                    if scheduler
                    else "start a local Dask cluster"
                )
                hint = (
                    "start one with `dask scheduler` and give its address (tcp://HOST:8786)"
                    if scheduler
                    else "see the error above; `uet run` without --executor dask runs locally"
                )
                raise StateError(f"could not {where}: {exc}", hint) from None
        executor = cls(client, cluster, root, str(client.scheduler.address))
        try:
            executor._check_versions()
            if scheduler is not None:
                executor._wait_for_workers()
                executor._check_allowed_failures()
            executor._check_shared_filesystem()
        except BaseException:
            executor.close()
            raise
        return executor

    def _check_versions(self) -> None:
        """Client, scheduler and workers must run the same Python, dask and uet-doit."""
        try:
            versions = self.client.get_versions(check=True, packages=["uet_doit"])
        except ValueError as exc:
            raise StateError(
                f"the Dask cluster at {self.address} runs other versions than this "
                f"coordinator:\n{exc}",
                "install the same uet-doit, dask and distributed everywhere",
            ) from None
        mine = versions["client"]["packages"].get("uet_doit")
        others = {"scheduler": versions["scheduler"]["packages"].get("uet_doit")}
        others.update({w: v["packages"].get("uet_doit") for w, v in versions["workers"].items()})
        wrong = {k: v for k, v in others.items() if v != mine}
        if wrong:
            listed = ", ".join(f"{k}: {v or 'not installed'}" for k, v in sorted(wrong.items()))
            raise StateError(
                f"uet-doit {mine} here, but {listed}",
                "install the same uet-doit on the scheduler and every worker",
            )

    def _wait_for_workers(self) -> None:
        try:
            self.client.wait_for_workers(1, timeout=FIRST_WORKER_TIMEOUT)
        except TimeoutError:
            raise StateError(
                f"no Dask worker connected to {self.address} within {FIRST_WORKER_TIMEOUT:g}s",
                f"start workers with: dask worker {self.address} --nthreads 1 "
                '--resources "aider=2"',
            ) from None

    def _check_allowed_failures(self) -> None:
        """A scheduler that re-runs tasks of dead workers would run a tool twice behind
        uet's back; the claim file stops that, but the user should know."""
        try:
            allowed = self.client.run_on_scheduler(_allowed_failures)
        except Exception:  # a scheduler that refuses run_on_scheduler: claim every attempt
            self.may_rerun = True
            return
        if allowed:
            self.may_rerun = True
            self.notes.append(
                f"the Dask scheduler re-runs tasks of lost workers ({allowed} times); uet never "
                "runs an attempt twice and retries it itself. Start the scheduler with "
                "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES=0 to silence this"
            )

    def _check_shared_filesystem(self) -> None:
        """Workers must see the project at the same path: tools write there, and doit
        checks targets in the coordinator's tree."""
        probe = self.root / ".uet" / f"dask-probe-{os.getpid()}"
        probe.parent.mkdir(parents=True, exist_ok=True)
        probe.write_text(self.address, encoding="utf-8")
        try:
            self._refresh(probe=str(probe))
        finally:
            probe.unlink(missing_ok=True)
        blind = [w for w in self._workers.values() if not w.sees_project]
        if blind:
            raise StateError(
                f"{len(blind)} Dask worker(s) do not see the project at {self.root}: "
                + ", ".join(f"{w.address} ({w.name})" for w in blind),
                "uet assumes a shared filesystem: mount the project at the same path on "
                "every worker machine",
            )

    # -- which worker can run what -------------------------------------------------------
    def _refresh(self, tools: list[str] | None = None, probe: str | None = None) -> None:
        """Learn the connected workers, and ask new ones (or all, for new tools) what they
        have. `client.run` reaches every worker directly, outside the task queue."""
        wanted = sorted(set(tools or ()) | {t for known in self._tools.values() for t in known})
        with self._lock:
            fresh = time.monotonic() - self._refreshed_at < REFRESH_SECONDS
            known = all(t in self._tools.get(a, {}) for a in self._workers for t in wanted)
        if fresh and known and probe is None:
            return
        info = self.client.scheduler_info(n_workers=-1)["workers"]
        with self._lock:
            self._refreshed_at = time.monotonic()
            unknown = [a for a in info if a not in self._workers or probe]
            stale = [
                a for a in info if a in self._tools and any(t not in self._tools[a] for t in wanted)
            ]
        ask = sorted(set(unknown) | set(stale))
        answers = (
            self.client.run(describe_worker, str(self.root), wanted, probe, workers=ask)
            if ask
            else {}
        )
        with self._lock:
            for address in list(self._workers):
                if address not in info:
                    del self._workers[address]
                    self._tools.pop(address, None)
            for address, answer in answers.items():
                resources = dict(info.get(address, {}).get("resources") or {})
                self._workers[address] = WorkerInfo(
                    address, str(answer["name"]), resources, bool(answer["sees_project"])
                )
                self._tools[address] = dict(answer["tools"])

    def placement(self, tool: str, *, force: bool = False) -> dict[str, Any] | None:
        """Where an attempt of `tool` may run, as `client.submit` keywords; None if no
        connected worker has it. Workers that declare resources are taken at their word
        (`--resources "aider=2"`: at most 2 aider attempts there at once); the others run
        the tools found on their PATH."""
        if tool in LOCAL_TOOLS:
            return {}
        if force:
            self._refreshed_at = -math.inf
        self._refresh([tool])
        with self._lock:
            declared = [w for w in self._workers.values() if w.resources.get(tool, 0) > 0]
            detected = [
                w.address
                for w in self._workers.values()
                if not w.resources and self._tools.get(w.address, {}).get(tool)
            ]
        if declared:
            return {"resources": {tool: 1}}
        if detected:
            return {"workers": detected, "allow_other_workers": False}
        return None

    def describe_workers(self) -> str:
        with self._lock:
            labels = [w.label(self._tools.get(a, {})) for a, w in sorted(self._workers.items())]
        return "; ".join(labels) or "no worker connected"

    def worker_count(self) -> int:
        with self._lock:
            return len(self._workers)

    # -- Executor ------------------------------------------------------------------------
    def submit(self, spec: AttemptSpec, on_start: OnStart | None = None) -> AttemptHandle:
        """`on_start` is not called: a pid on another machine means nothing here."""
        self._check_alive()
        where = self.placement(spec.tool)
        deadline = time.monotonic() + NO_WORKER_GRACE_SECONDS
        while where is None:  # look again; with no worker at all, wait a little for one
            where = self.placement(spec.tool, force=True)
            if where is None and (self.worker_count() or time.monotonic() > deadline):
                return _Finished(spec, self._no_worker_result(spec.tool))
            if where is None:
                time.sleep(POLL_SECONDS)
        future = self.client.submit(
            run_claimed_attempt_json if self.may_rerun else run_attempt_json,
            spec.to_json(),
            key=attempt_key(spec),
            pure=False,
            retries=0,
            **where,
        )
        handle = DaskHandle(self, spec, future)
        with self._lock:
            self._handles.add(handle)
        return handle

    def _no_worker_result(self, tool: str) -> AttemptResult:
        return AttemptResult(
            success=False,
            outcome=AttemptOutcome.FAILED,
            failure_class=FailureClass.NOT_INSTALLED,
            message=(
                f"no connected Dask worker has {tool}; workers: {self.describe_workers()}. "
                f'Install {tool} on a worker, or declare it: dask worker ... --resources "{tool}=1"'
            ),
        )

    def _check_alive(self) -> None:
        if self.lost is None and self.client.status not in ("running", "connecting"):
            self.lost = f"lost the Dask scheduler at {self.address}"
        if self.lost is not None:
            raise SchedulerLost(self.lost, "resume the run once the scheduler is back")

    def forget(self, handle: DaskHandle) -> None:
        with self._lock:
            self._handles.discard(handle)

    def cancel(self, keys: list[str]) -> None:
        """Stop these attempts wherever they run (best effort: the worker may be gone)."""
        if not keys or self.lost is not None:
            return
        try:
            self.client.run(cancel_attempts, keys, wait=True)
        except Exception:  # a worker that left: its reaper has killed the tool already
            return

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
        try:
            self.client.close(timeout=10)
        finally:
            if self.cluster is not None:
                self.cluster.close(timeout=10)


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
        from uet_doit.tools.process import STOPPING

        future, executor = self._future, self._executor
        finished = threading.Event()
        future.add_done_callback(lambda _f: finished.set())  # called in the client's thread
        unplaceable_since: float | None = None
        while True:
            if STOPPING.is_set():  # Ctrl-C / SIGTERM of the coordinator, seen by another thread
                raise KeyboardInterrupt
            finished.wait(POLL_SECONDS)
            if future.done() or future.status in ("error", "cancelled", "lost"):
                return self._read(future)
            # queued for workers that have all left: fail instead of waiting for ever
            if future.status == "pending" and executor.placement(self.spec.tool) is None:
                unplaceable_since = unplaceable_since or time.monotonic()
                if time.monotonic() - unplaceable_since > NO_WORKER_GRACE_SECONDS:
                    self.cancel()
                    return _lost_result(
                        "every Dask worker able to run "
                        f"{self.spec.tool} left while this attempt waited; workers: "
                        f"{executor.describe_workers()}",
                        "",
                    )
            else:
                unplaceable_since = None

    def _read(self, future: Any) -> AttemptResult:
        from distributed.scheduler import KilledWorker

        status = future.status
        if status == "finished":
            return AttemptResult.from_json(future.result())
        if status == "error":
            exc = future.exception()
            if isinstance(exc, KilledWorker):
                last = exc.last_worker
                name = getattr(last, "address", str(last))
                return _lost_result(
                    f"the Dask worker {name} died while it ran this attempt "
                    "(its tool was stopped with it)",
                    name,
                )
            return AttemptResult(
                success=False,
                outcome=AttemptOutcome.FAILED,
                failure_class=FailureClass.UNKNOWN,
                message=f"the Dask worker could not run the attempt: {type(exc).__name__}: {exc}",
            )
        # cancelled or lost: the scheduler went away, or the run is closing
        self._executor._check_alive()
        self._executor.lost = f"lost the Dask scheduler at {self._executor.address}"
        raise SchedulerLost(self._executor.lost, "resume the run once the scheduler is back")


class _Finished:
    """An attempt decided without the cluster (no worker has its tool)."""

    def __init__(self, spec: AttemptSpec, result: AttemptResult) -> None:
        self.spec = spec
        self._result = result

    def done(self) -> bool:
        return True

    def result(self) -> AttemptResult:
        return self._result

    def cancel(self) -> None:
        """Nothing runs."""


def _lost_result(message: str, worker: str) -> AttemptResult:
    return AttemptResult(
        success=False,
        outcome=AttemptOutcome.FAILED,
        failure_class=FailureClass.WORKER_LOST,
        message=message,
        worker=worker,
    )


def _quiet_dask_logs() -> None:
    """Dask logs reconnect attempts and lost workers with tracebacks; uet says what matters
    (worker_lost attempts, a lost scheduler) in its own words, one screen, no traceback."""
    import logging

    names = [n for n in logging.root.manager.loggerDict if n.startswith("distributed.")]
    for name in ("distributed", *names):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def _allowed_failures(dask_scheduler: Any) -> int:
    return int(dask_scheduler.allowed_failures)


def threads_per_worker(jobs: int, workers: int) -> int:
    """Enough threads on a local cluster's workers for `-n` attempts in flight."""
    return max(1, math.ceil(jobs / max(1, workers)))


# -- the executor of the running `uet run` ---------------------------------------------------
_active: dict[str, DaskExecutor] = {}


@contextmanager
def dask_session(ctx: RunContext, jobs: int) -> Iterator[DaskExecutor]:
    """Start the cluster (or connect) for one run and close it after, whatever happens.
    Steps find it by the run's session (`executor_for`)."""
    executor = DaskExecutor.start(
        ctx.root_path,
        ctx.scheduler,
        ctx.dask_workers,
        threads_per_worker(jobs, ctx.dask_workers),
    )
    _active[ctx.session] = executor
    try:
        yield executor
    finally:
        _active.pop(ctx.session, None)
        executor.close()


def executor_for(ctx: RunContext) -> DaskExecutor:
    try:
        return _active[ctx.session]
    except KeyError:
        raise UetError(
            "this step was compiled for --executor dask, but no Dask cluster is open",
            "run it with `uet run BUNDLE --executor dask`",
        ) from None
