"""What one step needs at run time, as plain picklable data, and how its outcome reads."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from doit.exceptions import TaskFailed

from uet_doit.run.budget import Budget
from uet_doit.run.resilience import BreakerPolicy, RetryPolicy
from uet_doit.state.store import new_run_id

LOCAL_TOOLS = frozenset({"shell", "python"})
RUN_ID_ENV = "UET_RUN_ID"
STOP_ON_FAILURE_ENV = "UET_STOP_ON_FAILURE"


class StepPaused(TaskFailed):  # type: ignore[misc]
    """Not started: a budget around the step is spent (pause_and_notify)."""


class StepNotStarted(TaskFailed):  # type: ignore[misc]
    """Not started: an earlier step failed and the run does not keep going."""


@dataclass(frozen=True)
class ValidationSpec:
    command: str | tuple[str, ...]
    expected_exit_code: int = 0
    timeout: float = 600.0


@dataclass(frozen=True)
class StepSpec:
    """Everything one step needs at run time, resolved from the bundle; plain, picklable data."""

    bundle_id: str
    ws_id: str
    step_id: str
    title: str
    tool: str
    instruction: str
    files: tuple[str, ...]
    create_files: tuple[str, ...]
    project_root: str
    signature: str
    timeout: float | None  # None: the tool's router setting, else DEFAULT_TIMEOUT_SECONDS
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    breaker: BreakerPolicy = field(default_factory=BreakerPolicy)
    breaker_explicit: bool = False
    validation: ValidationSpec | None = None
    context: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    model: str | None = None
    tool_options: dict[str, Any] = field(default_factory=dict)
    max_fix_attempts: int | None = None
    task_kind: str | None = None
    budgets: tuple[Budget, ...] = ()
    estimated_cost_usd: float | None = None


def fingerprint(root: Path, paths: tuple[str, ...]) -> str:
    """Content hash of a step's files as they are now (missing files count as such)."""
    digest = hashlib.md5(usedforsecurity=False)
    for rel in sorted(set(paths)):
        digest.update(rel.encode())
        try:
            digest.update(hashlib.md5((root / rel).read_bytes(), usedforsecurity=False).digest())
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            digest.update(b"-")
    return digest.hexdigest()


def run_id_for(bundle_id: str) -> str:
    run_id = os.environ.get(RUN_ID_ENV)
    if not run_id:
        run_id = os.environ[RUN_ID_ENV] = new_run_id(bundle_id)
    return run_id
