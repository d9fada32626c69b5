"""Alive but silent: `stall_timeout_seconds` stops an attempt as `stalled` and it is retried
(AI tools resuming their own session: tests/tools/test_ai_runs.py)."""

from __future__ import annotations

from typing import Any

import pytest

from support import Project, attempt_rows, one_ws

#: tools left silent until their stall timeout: `pytest -m "not slow"` leaves this module out
pytestmark = pytest.mark.slow


FAST = {"max_retries": 1, "initial_delay": 0, "max_delay": 0, "jitter": 0}


def quiet_shell_step(**extra: Any) -> dict[str, Any]:
    """Silent the first time (after touching a marker), quick the second."""
    cmd = "test -f marker && touch out.txt && exit 0; touch marker; sleep 300"
    return {"step_id": "quiet", "command": cmd, "create_files": ["out.txt"], **extra}


def test_a_silent_shell_step_is_stalled_and_retried_long_before_its_timeout(
    project: Project,
) -> None:
    project.bundle(
        one_ws(quiet_shell_step(stall_timeout_seconds=1, timeout_seconds=600, resilience=FAST))
    )
    res = project.uet("run", "bundle.yaml")
    assert res.code == 0, res.out + res.err
    first, second = attempt_rows(project, "quiet")
    assert (
        first["failure_class"] == "stalled" and "no output and no file change" in first["message"]
    )
    assert second["outcome"] == "succeeded"


def test_without_stall_timeout_a_shell_step_is_not_watched(project: Project) -> None:
    project.bundle(one_ws(quiet_shell_step(timeout_seconds=1, resilience={"max_retries": 0})))
    res = project.uet("run", "bundle.yaml")
    assert res.code == 1
    [only] = attempt_rows(project, "quiet")
    assert only["failure_class"] == "timeout"


def test_stalled_not_in_retry_on_fails_the_step(project: Project) -> None:
    res = {"max_retries": 2, "initial_delay": 0, "retry_on": ["timeout"]}
    project.bundle(one_ws(quiet_shell_step(stall_timeout_seconds=1, resilience=res)))
    assert project.uet("run", "bundle.yaml").code == 1
    [only] = attempt_rows(project, "quiet")
    assert only["failure_class"] == "stalled"
