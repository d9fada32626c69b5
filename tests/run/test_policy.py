"""The step policy on its own: an in-memory store, a scripted executor and a fake clock.

No process is started and nothing really sleeps: these tests drive retries, the breaker
(open, half-open probe), budget pauses, fallback to the next tool and the fix loop.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from uet_doit.run.context import RunContext
from uet_doit.run.executors.adopted import AdoptedExecutor
from uet_doit.run.executors.attempt import AttemptResult
from uet_doit.run.executors.base import Declined
from uet_doit.run.executors.cached import CachedAnswer, CachedExecutor
from uet_doit.run.policy import StepPolicy
from uet_doit.run.resilience import BreakerPolicy, RetryPolicy
from uet_doit.run.step_spec import Budget, StepSpec, ValidationSpec
from uet_doit.state.records import AttemptOutcome, EventKind, StepState
from uet_doit.state.store import RunStore
from uet_doit.testing import FakeClock, ScriptedExecutor
from uet_doit.tools.failures import FailureClass
from uet_doit.tools.routing import AdapterRegistry, RouterConfig


class Tools(AdapterRegistry):
    def __init__(self, root: Path, config: RouterConfig) -> None:
        super().__init__(root)
        self._config = config


def ok(cost: float = 0.0) -> AttemptResult:
    return AttemptResult(True, AttemptOutcome.SUCCEEDED, exit_code=0, cost_usd=cost)


def failed(cls: FailureClass, message: str = "", cost: float | None = None) -> AttemptResult:
    return AttemptResult(
        False,
        AttemptOutcome.FAILED,
        exit_code=1,
        failure_class=cls,
        message=message or str(cls),
        cost_usd=cost,
        output_tail=f"output of {cls}",
    )


FAST = RetryPolicy(max_retries=2, initial_delay=1, max_delay=1, jitter=0)


def spec(root: Path, tool: str = "aider", **extra: object) -> StepSpec:
    values: dict[str, object] = {
        "bundle_id": "b",
        "ws_id": "W",
        "step_id": "s1",
        "title": "step one",
        "tool": tool,
        "instruction": "write it",
        "files": (),
        "create_files": ("out.md",),
        "project_root": str(root),
        "signature": "sig",
        "timeout": 60.0,
        "retry": FAST,
    }
    values.update(extra)
    return StepSpec(**values)  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    store = RunStore.in_memory(tmp_path)
    store.start_run("b-1", "b")
    return store


def policy(
    root: Path,
    store: RunStore,
    executor: ScriptedExecutor,
    clock: FakeClock,
    step: StepSpec,
    config: RouterConfig | None = None,
) -> StepPolicy:
    ctx = RunContext("b-1", "b", str(root), "session-1", 1)
    tools = Tools(root, config or RouterConfig())
    return StepPolicy(step, ctx, store, tools, clock, executor)


def test_retry_waits_its_backoff_then_succeeds(tmp_path: Path, store: RunStore) -> None:
    clock = FakeClock()
    executor = ScriptedExecutor(
        aider=[failed(FailureClass.RATE_LIMIT), failed(FailureClass.TRANSIENT), ok(0.02)]
    )
    outcome = policy(tmp_path, store, executor, clock, spec(tmp_path)).run()
    assert outcome.state == StepState.SUCCEEDED and outcome.attempts == 3
    assert clock.sleeps == [1, 1]
    assert [a.attempt for a in store.attempts("b-1")] == [1, 2, 3]
    assert store.run_steps("b-1")[0].status == StepState.SUCCEEDED


def test_permanent_failure_falls_back_to_the_next_tool_of_the_route(
    tmp_path: Path, store: RunStore
) -> None:
    config = RouterConfig.model_validate({"routes": [{"tools": ["aider", "claude"]}]})
    executor = ScriptedExecutor(aider=[failed(FailureClass.PERMANENT, "401")], claude=[ok()])
    outcome = policy(tmp_path, store, executor, FakeClock(), spec(tmp_path), config).run()
    assert outcome.state == StepState.SUCCEEDED and outcome.tool == "claude"
    kinds = [e.kind for e in store.events("b-1")]
    assert EventKind.FALLBACK in kinds
    assert [a.fallback_from for a in store.attempts("b-1")] == [None, "aider"]


def test_breaker_opens_refuses_then_lets_one_probe_through(tmp_path: Path, store: RunStore) -> None:
    clock = FakeClock()
    breaker = BreakerPolicy(failure_threshold=2, timeout_seconds=60, half_open_after=30)
    no_retry = RetryPolicy(max_retries=0)
    executor = ScriptedExecutor(
        aider=[failed(FailureClass.TRANSIENT), failed(FailureClass.TRANSIENT), ok()]
    )
    step = spec(tmp_path, breaker=breaker, retry=no_retry)
    for _ in range(2):
        assert policy(tmp_path, store, executor, clock, step).run().state == StepState.FAILED
    refused = policy(tmp_path, store, executor, clock, step).run()
    assert refused.state == StepState.FAILED and "circuit open for aider" in refused.message
    attempts = store.attempts("b-1")
    assert attempts[-1].outcome == AttemptOutcome.REFUSED  # recorded, not counted as run
    assert len(executor.submitted) == 2
    clock.t += 31  # half-open: one probe goes through and closes the breaker
    assert policy(tmp_path, store, executor, clock, step).run().state == StepState.SUCCEEDED
    assert store.ledger.breakers()[0].state == "closed"


def test_not_installed_is_not_counted_by_the_breaker(tmp_path: Path, store: RunStore) -> None:
    breaker = BreakerPolicy(failure_threshold=1, timeout_seconds=60, half_open_after=30)
    missing = failed(FailureClass.NOT_INSTALLED, "aider not found on PATH; install with: pipx")
    executor = ScriptedExecutor(aider=[missing, missing])
    step = spec(tmp_path, breaker=breaker)
    for _ in range(2):
        outcome = policy(tmp_path, store, executor, FakeClock(), step).run()
        assert "not found on PATH" in outcome.message  # the hint every time, no breaker
    assert store.ledger.breakers() == []
    assert len(executor.submitted) == 2  # never retried


def test_budget_pauses_before_an_attempt_that_would_not_fit(
    tmp_path: Path, store: RunStore
) -> None:
    budget = Budget("workstream", "W", 0.05)
    step = spec(tmp_path, budgets=(budget,), estimated_cost_usd=0.03)
    executor = ScriptedExecutor(aider=[ok(0.03)])
    first = policy(tmp_path, store, executor, FakeClock(), step).run()
    assert first.state == StepState.SUCCEEDED
    second = policy(
        tmp_path,
        store,
        executor,
        FakeClock(),
        spec(tmp_path, step_id="s2", budgets=(budget,), estimated_cost_usd=0.03),
    ).run()
    assert second.state == StepState.PAUSED and "budget of workstream W reached" in second.message
    assert len(executor.submitted) == 1
    assert EventKind.BUDGET_PAUSED in [e.kind for e in store.events("b-1")]


def test_fix_loop_sends_the_validation_output_back(tmp_path: Path, store: RunStore) -> None:
    executor = ScriptedExecutor(aider=[failed(FailureClass.VALIDATION, "links broken"), ok()])
    outcome = policy(tmp_path, store, executor, FakeClock(), spec(tmp_path)).run()
    assert outcome.state == StepState.SUCCEEDED
    second = executor.submitted[1].instruction
    assert second.startswith("write it") and "output of validation_failed" in second
    assert EventKind.FIX_ATTEMPT in [e.kind for e in store.events("b-1")]


def test_stop_on_failure_leaves_later_steps_not_started(tmp_path: Path, store: RunStore) -> None:
    store.set_step_state("b-1", "s0", StepState.FAILED)
    ctx = RunContext("b-1", "b", str(tmp_path), "session-1", 1, stop_on_failure=True)
    executor = ScriptedExecutor(aider=[ok()])
    tools = Tools(tmp_path, RouterConfig())
    outcome = StepPolicy(spec(tmp_path), ctx, store, tools, FakeClock(), executor).run()
    assert outcome.state == StepState.NOT_STARTED and executor.submitted == []


def test_a_symlink_leaving_the_project_stops_the_step_before_its_tool(
    tmp_path: Path, store: RunStore
) -> None:
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    (tmp_path / "docs").symlink_to(outside)
    executor = ScriptedExecutor(aider=[ok()])
    step = spec(tmp_path, create_files=("docs/a.md",))
    outcome = policy(tmp_path, store, executor, FakeClock(), step).run()
    assert outcome.state == StepState.FAILED and executor.submitted == []
    assert "docs/a.md" in outcome.message and str(outside) in outcome.message


# -- the one attempt routine with the executors that start no tool ------------------------------
# an answer from a cache is recorded only once it stands (else nothing is, and what it replaced
# comes back); an attempt a killed runner left is finished on its own row


def routine_policy(root: Path, store: RunStore, **extra: object) -> StepPolicy:
    step = spec(root, "shell", **extra)
    return policy(root, store, ScriptedExecutor(), FakeClock(), step)


def answer(text: str) -> CachedAnswer:
    def restore(workdir: Path) -> None:
        (workdir / "out.md").write_text(text)

    return CachedAnswer(
        "from the cache", "key-1", saved_usd=0.5, files=("out.md",), restore=restore
    )


def test_a_cached_answer_that_stands_is_one_cached_attempt_of_cost_zero(
    tmp_path: Path, store: RunStore
) -> None:
    (tmp_path / "out.md").write_text("mine\n")
    p = routine_policy(tmp_path, store)
    executor = CachedExecutor(answer("kept\n"))
    result = p.attempt(p.attempt_spec("shell", 1, "write it"), executor, success_note="hit")
    executor.close()
    assert result.outcome == AttemptOutcome.CACHED and result.cost_usd == 0.0
    (row,) = store.attempts("b-1")
    assert (row.outcome, row.cost_usd, row.saved_usd, row.cache_key) == (
        "cached",
        0.0,
        0.5,
        "key-1",
    )
    assert store.run_steps("b-1")[0].status == StepState.SUCCEEDED
    assert sorted(p.name for p in tmp_path.iterdir() if "uet-kept" in p.name) == []
    assert (tmp_path / "out.md").read_text() == "kept\n"


def test_a_cached_answer_that_fails_validation_records_nothing_and_puts_back(
    tmp_path: Path, store: RunStore
) -> None:
    (tmp_path / "out.md").write_text("mine\n")
    p = routine_policy(tmp_path, store, validation=ValidationSpec(("grep", "-q", "good", "out.md")))
    executor = CachedExecutor(answer("bad\n"))
    with pytest.raises(Declined) as declined:
        p.attempt(p.attempt_spec("shell", 1, "write it"), executor)
    executor.close()
    assert declined.value.result is not None and "validation" in declined.value.message
    assert store.attempts("b-1") == []
    assert (tmp_path / "out.md").read_text() == "mine\n"


def test_a_left_attempt_without_an_exit_code_is_finished_as_interrupted(
    tmp_path: Path, store: RunStore
) -> None:
    p = routine_policy(tmp_path, store)
    aspec = p.attempt_spec("shell", 1, "write it")
    row = p.begin(aspec)
    executor = AdoptedExecutor(Path(str(aspec.exit_file)), None, FakeClock(), 60.0)
    with pytest.raises(Declined):
        p.attempt(aspec, executor, attempt_id=row)
    (left,) = store.attempts("b-1")
    assert left.outcome == AttemptOutcome.INTERRUPTED
    assert left.message == "the runner was killed while this attempt ran"


def test_a_left_attempt_that_exited_is_judged_on_its_own_row(
    tmp_path: Path, store: RunStore
) -> None:
    p = routine_policy(tmp_path, store, create_files=())
    aspec = p.attempt_spec("shell", 1, "write it")
    row = p.begin(aspec)
    Path(str(aspec.exit_file)).parent.mkdir(parents=True, exist_ok=True)
    Path(str(aspec.exit_file)).write_text("0\n")
    executor = AdoptedExecutor(Path(str(aspec.exit_file)), None, FakeClock(), 60.0)
    result = p.attempt(aspec, executor, attempt_id=row, success_note="adopted")
    assert result.success
    (done,) = store.attempts("b-1")
    assert (done.id, done.outcome) == (row, AttemptOutcome.SUCCEEDED)
    assert store.run_steps("b-1")[0].message == "adopted"
