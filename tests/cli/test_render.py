"""One look per state: `uet status`, the run's own output and the live tree print a step or a
criterion the same way, because the marks are defined once."""

from __future__ import annotations

from uet_doit.observe.monitor import status_text
from uet_doit.observe.status import RunStatus, StepStatus

from support import CRITERIA_BUNDLE, Project, shell_step


def test_status_prints_criteria_as_the_run_did(project: Project) -> None:
    project.bundle(CRITERIA_BUNDLE)
    run = project.uet("run", "bundle.yaml")
    assert run.code == 1
    status = project.uet("status")
    criteria = [line for line in status.out.splitlines() if line.startswith("[")]
    assert len(criteria) == 3
    assert "[!] W: output mentions y (UNMET: exit code 1" in status.out
    run_lines = {line.strip() for line in run.out.splitlines()}
    assert all(line in run_lines for line in criteria), (criteria, run.out)


def test_status_and_live_tree_use_the_same_labels(project: Project) -> None:
    project.bundle(
        {
            "bundle_id": "labels",
            "workstreams": [
                {
                    "ws_id": "W",
                    "steps": [
                        shell_step("ok", "true"),
                        shell_step("bad", "exit 3"),
                        shell_step("after", "true", depends_on=["bad"]),
                    ],
                }
            ],
        }
    )
    project.uet("run", "bundle.yaml", "-c")
    text = project.uet("status").out
    assert "  done        ok" in text
    assert "  FAILED      bad" in text
    steps = [
        StepStatus("w1", "W", "shell", "pending"),
        StepStatus("b1", "W", "shell", "blocked", last_error="waits for bad"),
    ]
    tree = status_text(RunStatus("r", "b", "failed", 0, None, 0, 2, 0.0, 0.0, 1.0, steps=steps))
    assert "w1 (waiting)" in tree and "b1 (blocked: waits for bad)" in tree
