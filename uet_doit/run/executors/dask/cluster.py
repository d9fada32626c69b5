"""Reaching a Dask cluster for one `uet run`, or starting a local one, and checking it.

A cluster uet starts listens on 127.0.0.1 only, with the dashboard off and
allowed-failures=0. A cluster the user gives (`--scheduler`) is checked: same versions
everywhere, at least one worker, and whether its scheduler re-runs tasks of lost workers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from uet_doit.errors import StateError, UsageError

#: how long `uet run --scheduler` tries to reach the scheduler
CONNECT_TIMEOUT = 10.0
#: how long `uet run --scheduler` waits for a first worker to connect
FIRST_WORKER_TIMEOUT = 30.0
INSTALL_HINT = "install it where uet runs: pip install 'uet-doit[dask]'"


@dataclass
class Cluster:
    """A client, and the LocalCluster behind it when uet started one."""

    client: Any
    local: Any  # a LocalCluster we own, else None
    address: str
    notes: list[str] = field(default_factory=list)  # warnings for the user
    may_rerun: bool = False  # the scheduler re-runs tasks of lost workers

    def close(self) -> None:
        try:
            self.client.close(timeout=10)
        finally:
            if self.local is not None:
                self.local.close(timeout=10)


def open_cluster(scheduler: str | None, workers: int, threads: int) -> Cluster:
    """Connect to `scheduler`, or start a LocalCluster of `workers` processes with
    `threads` threads each; then check it. Raises a UetError with what to do."""
    try:
        import dask
        import distributed
    except ImportError as exc:
        msg = f"--executor dask needs the dask extra ({exc})"
        raise UsageError(msg, INSTALL_HINT) from None
    quiet_dask_logs()
    api: Any = distributed  # typed, but its constructors are not annotated
    local: Any = None
    settings = {
        "distributed.scheduler.allowed-failures": 0,
        "distributed.admin.system-monitor.gil.enabled": False,
    }
    with dask.config.set(settings):
        try:
            if scheduler is None:
                local = api.LocalCluster(
                    n_workers=workers,
                    threads_per_worker=threads,
                    processes=True,
                    host="127.0.0.1",
                    scheduler_port=0,
                    dashboard_address=None,
                    # the scheduler's HTTP server binds :8787 unless told otherwise
                    scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
                    worker_dashboard_address=None,
                    silence_logs=40,
                )
                client = api.Client(local, set_as_default=False)
            else:
                client = api.Client(scheduler, timeout=CONNECT_TIMEOUT, set_as_default=False)
        except (OSError, TimeoutError, RuntimeError) as exc:
            if local is not None:
                local.close()
            if scheduler:
                where = f"reach the Dask scheduler at {scheduler}"
                hint = "start one with `dask scheduler` and give its address (tcp://HOST:8786)"
            else:
                where = "start a local Dask cluster"
                hint = "`uet run` without --executor dask runs the steps here"
            raise StateError(f"could not {where}: {exc}", hint) from None
    cluster = Cluster(client, local, str(client.scheduler.address))
    try:
        check_versions(client, cluster.address)
        if scheduler is not None:
            _wait_for_workers(cluster)
            _check_allowed_failures(cluster)
    except BaseException:
        cluster.close()
        raise
    return cluster


def check_versions(client: Any, address: str) -> None:
    """Client, scheduler and workers must run the same Python, dask and uet-doit: the
    scheduler and workers unpickle what the client sends."""
    try:
        versions = client.get_versions(check=True, packages=["uet_doit"])
    except ValueError as exc:
        raise StateError(
            f"the Dask cluster at {address} runs other versions than this coordinator:\n{exc}",
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


def _wait_for_workers(cluster: Cluster) -> None:
    try:
        cluster.client.wait_for_workers(1, timeout=FIRST_WORKER_TIMEOUT)
    except TimeoutError:
        raise StateError(
            f"no Dask worker connected to {cluster.address} within {FIRST_WORKER_TIMEOUT:g}s",
            f'start workers with: dask worker {cluster.address} --nthreads 1 --resources "aider=2"',
        ) from None


def _check_allowed_failures(cluster: Cluster) -> None:
    """A scheduler that re-runs tasks of dead workers would run a tool twice behind uet's
    back: attempts are then claimed on the worker, and the user is told."""
    try:
        allowed = cluster.client.run_on_scheduler(_allowed_failures)
    except Exception:  # a scheduler that refuses run_on_scheduler: claim every attempt
        cluster.may_rerun = True
        return
    if allowed:
        cluster.may_rerun = True
        cluster.notes.append(
            f"the Dask scheduler re-runs tasks of lost workers ({allowed} times); uet never "
            "runs an attempt twice and retries it itself. Start the scheduler with "
            "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES=0 to silence this"
        )


def _allowed_failures(dask_scheduler: Any) -> int:
    return int(dask_scheduler.allowed_failures)


def quiet_dask_logs() -> None:
    """Dask logs reconnect attempts and lost workers with tracebacks; uet says what matters
    (worker_lost attempts, a lost scheduler) in its own words, one screen, no traceback."""
    import logging

    names = [n for n in logging.root.manager.loggerDict if n.startswith("distributed.")]
    for name in ("distributed", *names):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def threads_per_worker(jobs: int, workers: int) -> int:
    """Enough threads on a local cluster's workers for `-n` attempts in flight."""
    return max(1, math.ceil(jobs / max(1, workers)))
