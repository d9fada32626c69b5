"""Budgets: enforced before launch, paused with notify, resumed after raising."""

from __future__ import annotations

import json
import signal
import sys
from typing import Any

import pytest

from support import Project, event_rows, kill_left_tools, shell_step, start_run

COST = """echo $UET_STEP_ID >> ran.log; echo '{"cost_usd": 0.02}' > $UET_RESULT_FILE"""


def costly(step_id: str, **extra: Any) -> dict[str, Any]:
    return shell_step(step_id, COST, **extra)


def chain(n: int, budget: float, **ws: Any) -> dict[str, Any]:
    steps = [costly(f"s{i}", **({"depends_on": [f"s{i - 1}"]} if i else {})) for i in range(n)]
    return {
        "bundle_id": "b",
        "workstreams": [{"ws_id": "WS-A", "max_cost_usd": budget, "steps": steps, **ws}],
    }


def test_budget_pauses_then_raising_it_runs_exactly_the_rest(project: Project) -> None:
    project.write(
        "notify.py",
        "import os, json\nopen('notified.json', 'w').write(json.dumps("
        "{k: v for k, v in os.environ.items() if k.startswith('UET_')}))\n",
    )
    data = chain(5, 0.05)
    data["notify"] = {"command": [sys.executable, "notify.py"]}
    project.bundle(data)
    first = project.uet("run", "bundle.yaml")
    assert first.code == 4, first.out
    ran = project.lines("ran.log")
    assert ran in (["s0", "s1"], ["s0", "s1", "s2"])
    assert "PAUSED: budget of workstream WS-A reached" in first.out
    status = project.status()
    assert status["status"] == "paused" and "workstream WS-A" in status["reason"]
    note = json.loads(project.read("notified.json"))
    assert note["UET_BUDGET"] == "workstream WS-A" and float(note["UET_LIMIT"]) == 0.05
    assert float(note["UET_SPENT"]) >= 0.04
    # raise the budget: exactly the remaining steps run, the finished ones never again
    data["workstreams"][0]["max_cost_usd"] = 1.0
    project.bundle(data)
    second = project.uet("run", "bundle.yaml")
    assert second.code == 0, second.out
    assert project.lines("ran.log") == ["s0", "s1", "s2", "s3", "s4"]
    assert project.uet("run", "bundle.yaml").code == 0
    assert len(project.lines("ran.log")) == 5


def test_budget_flag_overrides_without_editing(project: Project) -> None:
    project.bundle(chain(3, 0.01))
    assert project.uet("run", "bundle.yaml").code == 4
    assert project.uet("run", "bundle.yaml", "--budget", "WS-A=1").code == 0
    assert project.lines("ran.log") == ["s0", "s1", "s2"]
    bad = project.uet("run", "bundle.yaml", "--budget", "WS-NOPE=1")
    assert bad.code == 3 and "no workstream or step 'WS-NOPE'" in bad.err


def test_parallel_workers_cannot_all_slip_through(project: Project) -> None:
    steps = [costly(f"p{i}", estimated_cost_usd=0.02) for i in range(8)]
    project.bundle(
        {"bundle_id": "b", "workstreams": [{"ws_id": "WS-A", "max_cost_usd": 0.05, "steps": steps}]}
    )
    result = project.uet("run", "bundle.yaml", "-n", "4", "-P", "process", "-c")
    assert result.code == 4
    cost = json.loads(project.uet("cost", "--json").out)
    # check-and-reserve is atomic: the estimate of each running step was reserved
    assert cost["run_cost_usd"] <= 0.05 + 1e-9
    assert len(project.lines("ran.log")) == 2


def test_overshoot_without_estimates_is_bounded_by_running_steps(project: Project) -> None:
    steps = [costly(f"p{i}", estimated_cost_usd=0) for i in range(8)]
    project.bundle(
        {"bundle_id": "b", "workstreams": [{"ws_id": "WS-A", "max_cost_usd": 0.05, "steps": steps}]}
    )
    project.uet("run", "bundle.yaml", "-n", "4", "-P", "thread", "-c")
    cost = json.loads(project.uet("cost", "--json").out)
    assert cost["run_cost_usd"] <= 0.05 + 4 * 0.02 + 1e-9


def test_outside_steps_keep_running_and_dependents_are_blocked(project: Project) -> None:
    project.bundle(
        {
            "bundle_id": "b",
            "workstreams": [
                {"ws_id": "WS-A", "max_cost_usd": 0.0, "steps": [costly("a")]},
                {"ws_id": "WS-B", "steps": [costly("b")]},
                {"ws_id": "WS-C", "depends_on": ["WS-A"], "steps": [costly("c")]},
            ],
        }
    )
    project.uet("run", "bundle.yaml")
    states = {s["step_id"]: s["status"] for s in project.status()["steps"]}
    assert states == {"a": "paused", "b": "succeeded", "c": "blocked"}


def test_warn_and_fail_policies(project: Project) -> None:
    project.bundle(chain(3, 0.01, on_budget_exceeded="warn"))
    assert project.uet("run", "bundle.yaml").code == 0
    assert len(project.lines("ran.log")) == 3
    project.bundle(
        {
            "bundle_id": "f",
            "workstreams": [
                {
                    "ws_id": "WS-F",
                    "max_cost_usd": 0.0,
                    "on_budget_exceeded": "fail",
                    "steps": [costly("f0")],
                }
            ],
        },
        name="fail.yaml",
    )
    result = project.uet("run", "fail.yaml")
    assert result.code == 1
    assert project.status()["steps"][0]["last_error"].startswith("budget_exceeded")


def test_warning_event_once_at_threshold(project: Project) -> None:
    project.bundle(chain(4, 1.0, budget_warning_pct=5))
    assert project.uet("run", "bundle.yaml").code == 0
    assert len(event_rows(project, "budget_warning")) == 1


def test_cost_report_and_reset(project: Project) -> None:
    project.bundle(chain(2, 1.0))
    project.uet("run", "bundle.yaml")
    report = json.loads(project.uet("cost", "--json", "--by", "step").out)
    assert report["run_cost_usd"] == 0.04
    assert [r["step"] for r in report["run"]] == ["s0", "s1"]
    ws = next(b for b in report["budgets"] if b["budget"] == "workstream WS-A")
    assert ws["spent_usd"] == 0.04 and ws["remaining_usd"] == 0.96
    text = project.uet("cost").out
    assert "workstream WS-A" in text and "remaining $0.9600" in text
    assert project.uet("cost", "reset").code == 0
    report = json.loads(project.uet("cost", "--json").out)
    ws = next(b for b in report["budgets"] if b["budget"] == "workstream WS-A")
    assert ws["spent_usd"] == 0


def test_dry_run_estimates_against_budgets(project: Project) -> None:
    steps = [costly(f"e{i}", estimated_cost_usd=0.5) for i in range(3)]
    project.bundle(
        {"bundle_id": "b", "workstreams": [{"ws_id": "WS-A", "max_cost_usd": 1.0, "steps": steps}]}
    )
    out = project.uet("run", "bundle.yaml", "--dry-run").out
    assert (
        "forecast $1.5000-$1.5000 against workstream WS-A budget $1.0000 ($1.0000 left): "
        "EXCEEDED even at the low end" in out
    )
    assert not (project.root / "ran.log").exists()


@pytest.mark.slow
def test_spend_survives_kill_9(project: Project) -> None:
    project.bundle(
        {
            "bundle_id": "k",
            "workstreams": [
                {
                    "ws_id": "W",
                    "steps": [costly("paid"), shell_step("hang", "sleep 33", depends_on=["paid"])],
                }
            ],
        }
    )
    proc = start_run(project.root, "start  k:hang")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    kill_left_tools(project.root)  # and waits until they are gone
    report = json.loads(project.uet("cost", "--json").out)
    assert report["run_cost_usd"] == 0.02
