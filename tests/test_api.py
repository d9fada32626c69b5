"""`uet_doit.run_bundle`: a run from Python returns what happened and prints nothing."""

from __future__ import annotations

import io

import pytest

import uet_doit
from uet_doit.errors import UsageError
from uet_doit.state.records import CriterionState, RunState, StepState
from uet_doit.state.store import RunStore

from support import CRITERIA_BUNDLE, Project, shell_step


def three_steps(project: Project) -> None:
    steps = [
        shell_step(
            "ok", "echo made > made.txt; echo noise; echo more >&2", create_files=["made.txt"]
        ),
        shell_step("bad", "echo broken >&2; exit 3"),
        shell_step("after", "true", depends_on=["bad"]),
    ]
    project.bundle({"bundle_id": "lib", "workstreams": [{"ws_id": "W", "steps": steps}]})


def test_a_run_returns_each_steps_state_and_prints_nothing(
    project: Project, capfd: pytest.CaptureFixture[str]
) -> None:
    three_steps(project)
    outcome = uet_doit.run_bundle("bundle.yaml", keep_going=True)
    assert capfd.readouterr() == ("", "")
    assert isinstance(outcome, uet_doit.RunResult)
    assert outcome.exit_code == 1 and not outcome.ok
    assert outcome.status == RunState.FAILED
    assert outcome.states == {
        "ok": StepState.SUCCEEDED,
        "bad": StepState.FAILED,
        "after": StepState.BLOCKED,
    }
    assert outcome.step("ok").attempts == 1 and outcome.step("after").attempts == 0
    assert outcome.step("bad").failure_class is not None
    assert outcome.step("ok").failure_class is None
    assert outcome.cost_usd == 0.0 and outcome.step("ok").cost_unknown_attempts == 0
    assert outcome.step("ok").cost_usd == 0.0  # each step's cost, None when unknown
    assert "bad" in (outcome.reason or "")
    assert RunStore(project.root).run(outcome.run_id) is not None  # `uet status` sees it
    assert (project.root / "made.txt").exists()


def test_a_second_run_finds_the_done_step_up_to_date(
    project: Project, capfd: pytest.CaptureFixture[str]
) -> None:
    three_steps(project)
    first = uet_doit.run_bundle("bundle.yaml", project.root, keep_going=True)
    again = uet_doit.run_bundle("bundle.yaml", project.root, tasks=["ok"])
    assert capfd.readouterr() == ("", "")
    assert again.run_id != first.run_id
    assert again.exit_code == 0
    assert again.step("ok").status == StepState.UP_TO_DATE


def test_criteria_come_back_with_their_states(project: Project) -> None:
    project.bundle(CRITERIA_BUNDLE)
    outcome = uet_doit.run_bundle("bundle.yaml")
    assert outcome.exit_code == 1  # a criterion is unmet
    assert {c["description"]: c["state"] for c in outcome.criteria} == {
        "Reviewed by a person": CriterionState.TO_CONFIRM,
        "output exists": CriterionState.MET,
        "output mentions y": CriterionState.UNMET,
    }


def test_progress_is_printed_where_the_caller_asks(
    project: Project, capfd: pytest.CaptureFixture[str]
) -> None:
    three_steps(project)
    out = io.StringIO()
    outcome = uet_doit.run_bundle("bundle.yaml", out=out, reporter="plain", keep_going=True)
    assert f"run {outcome.run_id}" in out.getvalue()
    assert "FAILED lib:bad" in out.getvalue()
    assert capfd.readouterr().out == ""


def test_a_task_the_bundle_lacks_is_refused_before_a_run_is_recorded(project: Project) -> None:
    three_steps(project)
    with pytest.raises(UsageError, match="no task 'okk'"):
        uet_doit.run_bundle("bundle.yaml", tasks=["okk"])
    assert not RunStore(project.root).exists() or RunStore(project.root).runs() == []


def test_an_unknown_option_names_the_close_one(project: Project) -> None:
    three_steps(project)
    with pytest.raises(TypeError, match="did you mean keep_going"):
        uet_doit.run_bundle("bundle.yaml", keep_goin=True)


def test_a_step_cache_warning_is_not_printed_either(
    project: Project, capfd: pytest.CaptureFixture[str]
) -> None:
    """The cache warns on the step's stderr, which doit hides with the tool's output."""
    big = shell_step(
        "big",
        "head -c 10000 /dev/zero > big.bin",
        create_files=["big.bin"],
        cache={"mode": True, "max_bytes": 4096},  # too big to store: the cache warns
    )
    project.bundle({"bundle_id": "warns", "workstreams": [{"ws_id": "W", "steps": [big]}]})
    result = uet_doit.run_bundle("bundle.yaml")
    assert result.exit_code == 0
    assert capfd.readouterr() == ("", "")
