"""Best-of's round on its own: the policy's attempt routine in one thread per attempt, a
scripted executor and a fake landing extension (no git, no process).

What a user sees of it: of the attempts that passed, the preferred one lands; when its
landing fails the next is tried; the others are recorded superseded; an attempt whose
workspace could not be prepared fails without being judged; an error stops the round.
"""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import pytest
from run.test_policy import FakeClock, ScriptedExecutor, Tools, failed, ok, spec

from uet_doit.run.context import RunContext
from uet_doit.run.executors.attempt import AttemptResult, AttemptSpec
from uet_doit.run.extensions import AttemptNotRun, StepExtension
from uet_doit.run.extensions import StepPolicy as PolicyView
from uet_doit.run.policy import StepPolicy
from uet_doit.state.records import AttemptOutcome, StepState
from uet_doit.state.store import RunStore
from uet_doit.tools.failures import FailureClass
from uet_doit.tools.routing import RouterConfig

TOOLS = ("aider", "claude", "codex")


class FakeLanding(StepExtension):
    """Lands what passed, but for the tools told to conflict; notes every call."""

    def __init__(self, conflicts: tuple[str, ...] = (), unprepared: tuple[str, ...] = ()) -> None:
        self.conflicts = conflicts
        self.unprepared = unprepared
        self.calls: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def note(self, what: str, spec: AttemptSpec) -> None:
        with self.lock:
            self.calls.append((what, spec.tool))

    def prepare_attempt(self, policy: PolicyView, spec: AttemptSpec) -> AttemptSpec:
        if spec.tool in self.unprepared:
            raise AttemptNotRun(
                AttemptResult(
                    False,
                    AttemptOutcome.FAILED,
                    failure_class=FailureClass.WORKSPACE_SETUP,
                    message="workspace.setup failed",
                )
            )
        return spec

    def conclude_attempt(
        self, policy: PolicyView, spec: AttemptSpec, result: AttemptResult
    ) -> AttemptResult:
        self.note("conclude", spec)
        if result.success and spec.tool in self.conflicts:
            return result.failed_as(FailureClass.MERGE_CONFLICT, "its change conflicts")
        return result

    def abandon_attempt(self, policy: PolicyView, spec: AttemptSpec) -> None:
        self.note("abandon", spec)

    def after_success(self, policy: PolicyView, spec: AttemptSpec, result: AttemptResult) -> None:
        self.note("after_success", spec)


class RaisingExecutor(ScriptedExecutor):
    def submit(self, spec: AttemptSpec, on_start: object = None) -> object:  # type: ignore[override]
        if spec.tool == "codex":
            msg = "the executor broke"
            raise RuntimeError(msg)
        return super().submit(spec, on_start)


def round_policy(
    root: Path,
    store: RunStore,
    executor: ScriptedExecutor,
    landing: FakeLanding,
    pick: str = "cheapest",
) -> StepPolicy:
    step = spec(
        root,
        isolation="worktree",
        best_of=3,
        best_of_tools=TOOLS,
        best_of_pick=pick,
        create_files=(),
    )
    ctx = dataclasses.replace(
        RunContext("b-1", "b", str(root), "session-1", 1), landing_branch="main"
    )
    tools = Tools(root, RouterConfig())
    return StepPolicy(step, ctx, store, tools, FakeClock(), executor, extensions=[landing])


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    store = RunStore(tmp_path)  # on disk: the round's threads each have a connection
    store.start_run("b-1", "b")
    return store


def outcomes(store: RunStore) -> dict[str, tuple[str, str | None]]:
    return {a.tool: (a.outcome, a.failure_class) for a in store.attempts("b-1")}


def test_the_cheapest_that_lands_wins_when_the_cheapest_conflicts(
    tmp_path: Path, store: RunStore
) -> None:
    executor = ScriptedExecutor(aider=[ok(0.01)], claude=[ok(0.02)], codex=[ok(0.03)])
    landing = FakeLanding(conflicts=("aider",))
    outcome = round_policy(tmp_path, store, executor, landing).run()
    assert (outcome.state, outcome.tool, outcome.attempts) == (StepState.SUCCEEDED, "claude", 3)
    assert outcomes(store) == {
        "aider": ("failed", "merge_conflict"),
        "claude": ("succeeded", None),
        "codex": ("superseded", None),
    }
    codex = next(a for a in store.attempts("b-1") if a.tool == "codex")
    assert codex.message.startswith("superseded: another attempt landed")
    assert codex.cost_usd == pytest.approx(0.03)  # what it cost is kept
    # judged one at a time in the pick's order; the winner's success comes last
    assert [c for c in landing.calls if c[0] == "conclude"] == [
        ("conclude", "aider"),
        ("conclude", "claude"),
    ]
    assert landing.calls[-1] == ("after_success", "claude")
    assert ("abandon", "codex") in landing.calls
    assert store.run_steps("b-1")[0].status == StepState.SUCCEEDED


def test_failed_attempts_are_judged_first_and_none_passing_fails_the_step(
    tmp_path: Path, store: RunStore
) -> None:
    executor = ScriptedExecutor(
        aider=[failed(FailureClass.VALIDATION, "links broken")],
        claude=[failed(FailureClass.TRANSIENT, "overloaded")],
        codex=[ok(0.03)],
    )
    landing = FakeLanding(conflicts=("codex",))
    outcome = round_policy(tmp_path, store, executor, landing).run()
    assert outcome.state == StepState.FAILED and "none of 3 attempts passed" in outcome.message
    assert outcomes(store) == {
        "aider": ("failed", "validation_failed"),
        "claude": ("failed", "transient_error"),
        "codex": ("failed", "merge_conflict"),
    }
    concluded = [tool for what, tool in landing.calls if what == "conclude"]
    assert concluded[-1] == "codex" and sorted(concluded) == sorted(TOOLS)


def test_an_attempt_whose_workspace_failed_is_recorded_and_not_judged(
    tmp_path: Path, store: RunStore
) -> None:
    executor = ScriptedExecutor(aider=[ok(0.01)], claude=[ok(0.02)], codex=[ok(0.03)])
    landing = FakeLanding(unprepared=("aider",))
    outcome = round_policy(tmp_path, store, executor, landing).run()
    assert outcome.tool == "claude"
    assert outcomes(store)["aider"] == ("failed", "workspace_setup")
    assert ("conclude", "aider") not in landing.calls
    assert [s.tool for s in executor.submitted if s.tool == "aider"] == []


def test_an_error_in_one_attempt_interrupts_the_round(tmp_path: Path, store: RunStore) -> None:
    executor = RaisingExecutor(aider=[ok(0.01)], claude=[ok(0.02)])
    landing = FakeLanding()
    with pytest.raises(RuntimeError, match="the executor broke"):
        round_policy(tmp_path, store, executor, landing).run()
    assert {a.outcome for a in store.attempts("b-1")} == {AttemptOutcome.INTERRUPTED}
    assert [what for what, _ in landing.calls if what in ("conclude", "after_success")] == []
