"""Extension points of the step policy: what isolated workspaces and the step cache plug in.

The policy calls every extension at four moments; the base class does nothing at each, so
an extension overrides only what it needs. The runtime (run/doit/action.py) decides which
extensions a run has, from its RunContext.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from uet_doit.run.executors.attempt import AttemptResult, AttemptSpec
    from uet_doit.run.policy import StepOutcome, StepPolicy


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
