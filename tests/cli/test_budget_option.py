"""`--budget SCOPE=USD`: a budget is a finite amount of zero or more; anything else would
switch the limit off (NaN compares false with every spend, inf never runs out)."""

from __future__ import annotations

import pytest

from uet_doit.errors import EXIT_USAGE

from support import Project, shell_step


def bundle(project: Project) -> None:
    steps = [shell_step("a1", "true")]
    project.bundle(
        {
            "bundle_id": "budgeted",
            "workstreams": [
                {"ws_id": "ws-a", "steps": steps},
                {"ws_id": "ws-b", "steps": [shell_step("b1", "true")]},
            ],
        }
    )


def runs(project: Project) -> str:
    return project.uet("runs").out


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-1", "1e999", "abc", ""])
def test_budget_must_be_a_finite_amount(project: Project, value: str) -> None:
    bundle(project)
    res = project.uet("run", "bundle.yaml", "--budget", f"ws-a={value}")
    assert res.code == EXIT_USAGE
    assert f"--budget 'ws-a={value}'" in res.err
    assert "no runs recorded" in runs(project)


def test_budget_amounts_that_are_accepted(project: Project) -> None:
    bundle(project)
    res = project.uet("run", "bundle.yaml", "--budget", "ws-a=2.5", "--budget", "bundle=1e1")
    assert res.code == 0, res.err
    assert project.uet("run", "bundle.yaml", "--budget", "ws-b=0").code != EXIT_USAGE


@pytest.mark.parametrize("value", ["ws-a", "=3", "ws-a:3"])
def test_budget_needs_scope_and_amount(project: Project, value: str) -> None:
    bundle(project)
    res = project.uet("run", "bundle.yaml", "--dry-run", "--budget", value)
    assert res.code == EXIT_USAGE
    assert "expected SCOPE=DOLLARS" in res.err
