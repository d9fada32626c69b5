"""What steps and gates need at run time, resolved from the bundle; plain picklable data.

Pure: the compiler builds these without importing anything of the runtime."""

from __future__ import annotations

import hashlib
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from uet_doit.bundle.effective import effective_review, effective_tool, explicit_isolation
from uet_doit.bundle.fields import Isolation
from uet_doit.bundle.model import Bundle, Step, TestGate, Workstream
from uet_doit.cache.settings import DEFAULT_CACHE_MAX_BYTES
from uet_doit.run.resilience import BreakerPolicy, RetryPolicy
from uet_doit.tools.adapters import tool_traits
from uet_doit.tools.attempt import ValidationSpec
from uet_doit.tools.commands import command_argv
from uet_doit.tools.redact import DEFAULT_MAX_LOG_BYTES

DEFAULT_POLICY = "pause_and_notify"


@dataclass(frozen=True)
class ReviewerSpec:
    """Who reviews a step's change before it lands (run/review/reviewer.py), as plain data."""

    tool: str
    model: str | None = None
    max_cost_usd: float | None = None
    max_fix_attempts: int = 1
    timeout: float = 600.0


@dataclass(frozen=True)
class Budget:
    scope: str  # step | workstream | bundle
    scope_id: str
    limit: float
    policy: str = DEFAULT_POLICY
    warning_pct: float | None = None

    @property
    def label(self) -> str:
        return f"{self.scope} {self.scope_id}"


@dataclass(frozen=True)
class Overrun:
    """A budget a step may not start under."""

    budget: Budget
    spent: float
    reserved: float
    estimate: float

    @property
    def message(self) -> str:
        return (
            f"budget of {self.budget.label} reached: spent ${self.spent:.4f}"
            + (f" + ${self.reserved:.4f} reserved" if self.reserved else "")
            + (f" + ${self.estimate:.4f} estimated" if self.estimate else "")
            + f" > limit ${self.budget.limit:.4f}"
        )


def budgets_for(bundle: Bundle, ws: Workstream, step: Step) -> tuple[Budget, ...]:
    """The budgets around a step, innermost first. The policy is the nearest one set."""
    policy = ws.on_budget_exceeded or bundle.on_budget_exceeded or DEFAULT_POLICY
    warn = ws.budget_warning_pct or bundle.budget_warning_pct
    out: list[Budget] = []
    if step.max_cost_usd is not None:
        out.append(Budget("step", step.step_id, step.max_cost_usd, policy, warn))
    if ws.max_cost_usd is not None:
        out.append(Budget("workstream", ws.ws_id, ws.max_cost_usd, policy, warn))
    if bundle.max_cost_usd is not None:
        out.append(
            Budget(
                "bundle",
                bundle.bundle_id,
                bundle.max_cost_usd,
                bundle.on_budget_exceeded or DEFAULT_POLICY,
                bundle.budget_warning_pct,
            )
        )
    return tuple(out)


@dataclass(frozen=True)
class GateSpec:
    """A gate as plain, picklable data."""

    bundle_id: str
    scope: str  # a ws_id, or "bundle"
    index: int
    gate_type: str
    command: str | tuple[str, ...]
    required: bool
    blocking: bool
    timeout: float
    project_root: str
    max_log_bytes: int = DEFAULT_MAX_LOG_BYTES

    @property
    def label(self) -> str:
        where = "the bundle" if self.scope == "bundle" else self.scope
        return f"{self.gate_type} of {where}"

    @property
    def argv(self) -> list[str]:
        return command_argv(self.command if isinstance(self.command, str) else list(self.command))

    @property
    def executable(self) -> str:
        if isinstance(self.command, str):
            try:
                words = shlex.split(self.command)
            except ValueError:
                words = self.command.split()
            return words[0] if words else ""
        return self.command[0]


def gate_task_name(scope: str, index: int, gate: TestGate) -> str:
    return f"{scope}.gate-{index + 1}-{gate.type.lower().removeprefix('gate_')}"


def gate_spec(bundle: Bundle, scope: str, index: int, gate: TestGate, root: Path) -> GateSpec:
    cmd = gate.command
    return GateSpec(
        bundle_id=bundle.bundle_id,
        scope=scope,
        index=index,
        gate_type=gate.type,
        command=cmd if isinstance(cmd, str) else tuple(cmd),
        required=gate.required,
        blocking=gate.blocking,
        timeout=gate.timeout or 600.0,
        project_root=str(root),
        max_log_bytes=bundle.max_log_bytes or DEFAULT_MAX_LOG_BYTES,
    )


@dataclass(frozen=True)
class StepSpec:
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
    stall_timeout: float | None = None  # None: the tool's router setting, else no watch
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
    context_tokens: int | None = None  # the workstream's estimated_context_tokens (forecasts)
    max_log_bytes: int | None = None
    # isolation (run/workspaces/worktrees.py): "worktree" where the project is a git repository
    isolation: str = "none"
    sandbox: str = "auto"  # tools/sandbox/__init__.py: the nearest `sandbox:`, else the profile's
    scope: tuple[str, ...] = ()  # globs the step may change besides files/create_files
    workspace_copy: tuple[str, ...] = ()
    workspace_setup: str | tuple[str, ...] | None = None
    workspace_dir: str | None = None
    serialize: bool = False  # conflicts: serialize (never alongside an overlapping scope)
    cache_mode: str | None = None  # the nearest `cache:` the bundle sets (None: defaults)
    cache_env: tuple[str, ...] = ()  # variables whose hashed values enter the cache key
    cache_max_bytes: int = DEFAULT_CACHE_MAX_BYTES  # outputs totalling more are not cached
    upstream_outputs: tuple[str, ...] = ()  # outputs of the steps it depends on
    best_of: int = 1  # attempts run at once (run/best_of.py); 1: one at a time
    best_of_tools: tuple[str, ...] = ()  # their tools in turn (empty: the step's own)
    best_of_pick: str = "first"  # or "cheapest"
    review: ReviewerSpec | None = None  # `review: {steps: true}`: judged before it lands

    @property
    def paths(self) -> tuple[str, ...]:
        return (*self.files, *self.create_files)


def fingerprint(root: Path, paths: tuple[str, ...]) -> str:
    """Content hash of a step's files as they are now (missing files count as such)."""
    digest = hashlib.md5(usedforsecurity=False)
    for rel in sorted(set(paths)):
        digest.update(rel.encode())
        try:
            with (root / rel).open("rb") as fh:  # in chunks: an output may be gigabytes
                digest.update(hashlib.file_digest(fh, _md5).digest())
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            digest.update(b"-")
    return digest.hexdigest()


def _md5() -> Any:
    return hashlib.md5(usedforsecurity=False)


def effective_isolation(bundle: Bundle, ws: Workstream, step: Step) -> Isolation:
    """Step over workstream over bundle; by default AI tools (and custom adapters, which
    edit files) get a worktree, commands run in place. Whether the project is a git
    repository is the runtime's question: outside one, the default means `none`."""
    named = explicit_isolation(bundle, ws, step)
    if named is not None:
        return named
    return "none" if tool_traits(effective_tool(bundle, ws, step)).in_place else "worktree"


def step_reviewer(bundle: Bundle, ws: Workstream, step: Step) -> ReviewerSpec | None:
    """The reviewer of the step's change, when the nearest `review` has `steps: true`."""
    review = effective_review(bundle, ws, step)
    if review is None or not review.steps or review.tool is None:
        return None
    return ReviewerSpec(
        tool=review.tool,
        model=review.model,
        max_cost_usd=review.max_cost_usd,
        max_fix_attempts=1 if review.max_fix_attempts is None else review.max_fix_attempts,
        timeout=review.timeout_seconds or 600.0,
    )
