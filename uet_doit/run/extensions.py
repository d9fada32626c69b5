"""The seam between the step policy and what plugs into it: isolated workspaces, the step
cache, reviews, and the policy's own helpers (budget gate, the attempt loop, best-of, recovery).

The policy calls every extension at four moments; the base class does nothing at each, so
an extension overrides only what it needs. The runtime (run/doit/action.py) decides which
extensions a run has, from its RunContext. What an extension (or a helper) may use of the
policy is the `StepPolicy` protocol here; run/policy.py's StepPolicy is the one there is.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from uet_doit.run.breakers import BreakerBook
from uet_doit.run.budget import CostLedger
from uet_doit.run.context import RunContext
from uet_doit.run.executors.attempt import AttemptResult, AttemptSpec
from uet_doit.run.executors.base import Executor
from uet_doit.run.providers import ProviderGate
from uet_doit.run.resilience import Clock
from uet_doit.run.step_spec import StepSpec
from uet_doit.run.tool_setup import ToolSetup
from uet_doit.state.records import AttemptOutcome, AttemptRecord, StepState
from uet_doit.state.store import RunStore
from uet_doit.tools.failures import FailureClass
from uet_doit.tools.routing import AdapterRegistry


@dataclass(frozen=True)
class StepOutcome:
    """How a step ended in this run, in uet's terms (the doit action translates it)."""

    state: StepState  # SUCCEEDED, FAILED, PAUSED or NOT_STARTED
    message: str = ""
    tool: str | None = None
    attempts: int = 0  # attempts this run started for the step
    origin: str | None = None  # "recovered"/"adopted" from an earlier run, when it was

    @property
    def ok(self) -> bool:
        return self.state == StepState.SUCCEEDED


class StepPolicy(Protocol):
    """The policy running one step, as its extensions and helpers see it."""

    last_attempt: int | None  # the newest attempt number this run gave the step

    @property
    def spec(self) -> StepSpec: ...
    @property
    def ctx(self) -> RunContext: ...
    @property
    def store(self) -> RunStore: ...
    @property
    def tools(self) -> AdapterRegistry: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def executor(self) -> Executor: ...
    @property
    def extensions(self) -> Sequence[StepExtension]: ...
    @property
    def root(self) -> Path: ...
    @property
    def ledger(self) -> CostLedger: ...
    @property
    def breakers(self) -> BreakerBook: ...
    @property
    def providers(self) -> ProviderGate | None: ...

    def state(
        self, state: StepState, message: str | None = None, tool: str | None = None
    ) -> None: ...
    def fail(self, cls: FailureClass, message: str, tool: str | None = None) -> StepOutcome: ...
    def setup(self, tool: str) -> ToolSetup: ...
    def timeout(self, tool: str) -> float: ...
    def attempt_spec(
        self, tool: str, attempt_no: int, instruction: str, resume: str | None = None
    ) -> AttemptSpec: ...
    def attempts_so_far(self) -> int: ...
    def attempt(
        self,
        aspec: AttemptSpec,
        executor: Executor | None = None,
        *,
        attempt_id: int | None = None,
        fallback_from: str | None = None,
        success_note: str | None = None,
        turn: ConcludeTurn | None = None,
    ) -> AttemptResult: ...
    def latest_attempt(self) -> AttemptRecord | None: ...
    def begin(
        self,
        aspec: AttemptSpec,
        outcome: AttemptOutcome = AttemptOutcome.RUNNING,
        fallback_from: str | None = None,
    ) -> int: ...
    def slot(self, tool: str) -> AbstractContextManager[None]: ...
    def provider_place(self, aspec: AttemptSpec) -> AbstractContextManager[str | None]: ...
    def finish(
        self,
        attempt_id: int,
        result: AttemptResult,
        success_note: str | None = None,
        aspec: AttemptSpec | None = None,
        tool: str | None = None,
    ) -> None: ...


class ConcludeTurn(Protocol):
    """An attempt that concludes only when its turn comes: of best-of's attempts, run at
    once, one lands, and which one is picked once they have all run (run/best_of.py)."""

    def wait(self, spec: AttemptSpec, result: AttemptResult) -> AttemptResult | None:
        """Wait, once the attempt ran, until it may conclude (None); or the result it is
        recorded with instead, not concluded (superseded: another one landed)."""
        ...

    def concluded(self, spec: AttemptSpec, result: AttemptResult) -> AttemptResult:
        """The attempt concluded with `result`; returns what is recorded of it."""
        ...


class AttemptNotRun(Exception):
    """Raised by `prepare_attempt` when the attempt cannot start (e.g. its workspace set-up
    failed): the attempt is recorded with this result and the tool is not called."""

    def __init__(self, result: AttemptResult) -> None:
        super().__init__(result.message)
        self.result = result


class StepExtension:
    def before_step(self, policy: StepPolicy) -> StepOutcome | None:
        """Before any attempt; an outcome here finishes the step (e.g. a cache hit)."""
        return None

    def prepare_attempt(self, policy: StepPolicy, spec: AttemptSpec) -> AttemptSpec:
        """The spec an attempt really runs with (e.g. its own worktree as `workdir`)."""
        return spec

    def conclude_attempt(
        self, policy: StepPolicy, spec: AttemptSpec, result: AttemptResult
    ) -> AttemptResult:
        """Judge and apply what the attempt did (e.g. scope check, landing its commit)."""
        return result

    def abandon_attempt(self, policy: StepPolicy, spec: AttemptSpec) -> None:
        """The attempt was interrupted before it concluded (e.g. keep its worktree)."""

    def after_success(self, policy: StepPolicy, spec: AttemptSpec, result: AttemptResult) -> None:
        """The step succeeded with this attempt (e.g. store its outputs in the cache)."""
