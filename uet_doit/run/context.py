"""RunContext: what every step of one run shares, passed explicitly (never through os.environ).

It is plain picklable data, so `-P process` workers receive it with their task's action.
The environment is written in one place only: the child environment of a tool
(`tool_env`), where UET_* variables tell a tool which run and step it serves.
"""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any


def new_session() -> str:
    """One id per runner: tells this runner's attempts from those a killed one left."""
    return secrets.token_hex(16)


def new_run_id(bundle_id: str, now: float | None = None, unique: bool = False) -> str:
    """`bundle-YYYYmmdd-HHMMSS`; `unique` adds a short random part (plain doit runs, which
    cannot look in the store before their first step)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now or time.time()))
    run_id = f"{bundle_id}-{stamp}"
    return f"{run_id}-{secrets.token_hex(2)}" if unique else run_id


@dataclass(frozen=True, kw_only=True)
class RunSettings:
    """Where a run's attempts run and how it uses the cache, as its caller chose: declared
    once for the request (RunOptions) and for what every step is told (RunContext)."""

    executor: str = "local"  # where attempts run: "local" or "dask" (`uet run --executor`)
    scheduler: str | None = None  # --executor dask: the scheduler's address, else a LocalCluster
    dask_workers: int = 2  # --executor dask without --scheduler: worker processes to start
    shared_fs: bool = True  # dask: workers see the project at its path (else: --no-shared-fs)
    cache: str = "default"  # `--cache` "on", `--no-cache` "off" (cache/settings.py)
    # RunOptions: `--cache-store URL`; RunContext: the configured store's URL (None: .uet/cache)
    cache_store: str | None = None
    quiet: bool = False  # warnings are recorded, never printed (run_bundle without `out`)

    def run_settings(self) -> dict[str, Any]:
        """These settings alone, as keywords (of a RunContext made from RunOptions)."""
        return {f.name: getattr(self, f.name) for f in fields(RunSettings)}


@dataclass(frozen=True)
class RunContext(RunSettings):
    run_id: str
    bundle_id: str
    root: str  # the project root, absolute
    session: str
    runner_pid: int
    stop_on_failure: bool = False  # `uet run` without -c: no new step after a failure
    # isolation (run/workspaces/isolation.py): the branch isolated steps land on, and the git work
    # tree holding the project; None when no step is isolated (and in plain doit runs)
    landing_branch: str | None = None
    git_top: str | None = None
    jobs: int = 64  # `-n`: the most attempts in flight, the cap of provider limits

    @property
    def root_path(self) -> Path:
        return Path(self.root)

    @classmethod
    def create(
        cls,
        run_id: str,
        bundle_id: str,
        root: Path,
        settings: RunSettings | None = None,
        *,
        stop_on_failure: bool = False,
    ) -> RunContext:
        """A new run's context in this process, with the caller's `settings`."""
        return cls(
            run_id=run_id,
            bundle_id=bundle_id,
            root=str(root.resolve()),
            session=new_session(),
            runner_pid=os.getpid(),
            stop_on_failure=stop_on_failure,
            **(settings or RunSettings()).run_settings(),
        )

    def tool_env(self, step_id: str, ws_id: str, attempt: int, result_file: str) -> dict[str, str]:
        """What a tool is told about its run (docs/architecture.md: the UET_* variables)."""
        return {
            "UET_RUN_ID": self.run_id,
            "UET_STEP_ID": step_id,
            "UET_WS_ID": ws_id,
            "UET_ATTEMPT": str(attempt),
            "UET_PROJECT_ROOT": self.root,
            "UET_RESULT_FILE": result_file,
        }
