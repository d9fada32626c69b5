"""Retries, timeouts, breakers, resume and skips, through `uet run` with shell steps."""

from __future__ import annotations

import sqlite3
import time

import pytest

from uet_doit.state.store import RunStore

from support import (
    Project,
    flaky,
    kill_left_tools,
    one_ws,
    shell_step,
    start_run,
    wait_gone,
    wait_until,
)

#: what support.flaky retries with, for steps that add to it
FAST_RETRY = {"max_retries": 3, "initial_delay": 0, "max_delay": 0, "jitter": 0}


def test_rate_limited_twice_then_passes_in_three_attempts(project: Project) -> None:
    project.bundle(one_ws(flaky("rl", 2, "Error: 429 Too Many Requests")))
    assert project.uet("run", "bundle.yaml").code == 0
    step = project.status()["steps"][0]
    assert step["status"] == "succeeded" and step["attempts"] == 3
    assert project.lines("rl.calls") == ["1", "2", "3"]


def test_auth_error_is_not_retried(project: Project) -> None:
    project.bundle(one_ws(flaky("auth", 5, "401 Unauthorized: invalid API key")))
    result = project.uet("run", "bundle.yaml")
    assert result.code == 1
    step = project.status()["steps"][0]
    assert step["attempts"] == 1 and step["failure_class"] == "permanent"
    assert project.lines("auth.calls") == ["1"]


def test_unknown_failures_are_not_retried_unless_listed(project: Project) -> None:
    project.bundle(
        one_ws(
            flaky("odd", 1, "something odd"),
            flaky("odd2", 1, "something odd", resilience={**FAST_RETRY, "retry_on": ["unknown"]}),
        )
    )
    project.uet("run", "bundle.yaml", "-c")
    assert project.lines("odd.calls") == ["1"]
    assert project.lines("odd2.calls") == ["1", "2"]


def test_timed_out_step_is_killed_with_its_grandchildren(project: Project) -> None:
    project.bundle(
        one_ws(
            shell_step(
                "slow",
                "sleep 60 & echo $! > bg.pid; wait",
                timeout_seconds=0.5,
                resilience={"max_retries": 0},
            )
        )
    )
    start = time.monotonic()
    assert project.uet("run", "bundle.yaml").code == 1
    assert time.monotonic() - start < 40  # the 0.5 s timeout, not the 60 s sleep
    assert project.status()["steps"][0]["failure_class"] == "timeout"
    assert wait_gone(int(project.read("bg.pid"))), "the step's child outlived its timeout"


@pytest.mark.slow
def test_breaker_opens_after_threshold_then_lets_one_probe_through(project: Project) -> None:
    breaker = {"failure_threshold": 2, "timeout_seconds": 60, "half_open_after": 1}
    steps = [
        flaky(f"b{i}", 9, "503 Service Unavailable", resilience={"max_retries": 0})
        for i in range(4)
    ]
    project.bundle(one_ws(*steps, circuit_breaker=breaker))
    result = project.uet("run", "bundle.yaml", "-c")
    assert result.code == 1
    ran = [i for i in range(4) if project.lines(f"b{i}.calls")]
    assert ran == [0, 1]
    assert "circuit open for shell until" in result.out
    assert "open" in project.uet("breakers").out
    before = sum(len(project.lines(f"b{i}.calls")) for i in range(4))
    [shell] = RunStore(project.root).ledger.breakers()
    assert shell.opened_at is not None
    half_open_at = shell.opened_at + breaker["half_open_after"]
    assert wait_until(lambda: time.time() > half_open_at, 30)  # the breaker's own clock
    project.uet("run", "bundle.yaml", "-c")
    after = sum(len(project.lines(f"b{i}.calls")) for i in range(4))
    assert after - before == 1  # half-open: one probe, which failed and reopened the breaker

    assert project.uet("breakers", "reset").code == 0
    assert "no breakers" in project.uet("breakers").out


def test_resume_keeps_the_run_id_and_reruns_only_the_failed(project: Project) -> None:
    project.bundle(
        one_ws(
            shell_step("ok", "echo ok >> ran.log"),
            shell_step("gate", "echo gate >> ran.log; test -f go"),
        )
    )
    first = project.uet("run", "bundle.yaml", "-c")
    assert first.code == 1
    run_id = first.out.split()[1]
    project.write("go", "")
    second = project.uet("run", "bundle.yaml", "--resume", run_id)
    assert second.code == 0 and f"run {run_id} (resumed)" in second.out
    assert project.lines("ran.log") == ["ok", "gate", "gate"]
    status = project.status(run_id)
    assert status["status"] == "succeeded"
    assert [s["attempts"] for s in status["steps"]] == [1, 2]


def test_resume_reports_changed_steps(project: Project) -> None:
    project.bundle(one_ws(shell_step("a", "false"), shell_step("b", "true")))
    run_id = project.uet("run", "bundle.yaml", "-c").out.split()[1]
    project.bundle(one_ws(shell_step("a", "true"), shell_step("b", "true")))
    second = project.uet("run", "bundle.yaml", "--resume", run_id)
    assert "changed steps re-plan: a" in second.out
    assert second.code == 0


def test_skipped_workstream_skips_its_dependents(project: Project) -> None:
    project.bundle(
        {
            "bundle_id": "s",
            "workstreams": [
                {"ws_id": "WS-K0", "steps": [shell_step("k0", "echo k0 >> ran.log")]},
                {"ws_id": "WS-K1", "steps": [shell_step("k1", "echo k1 >> ran.log")]},
                {
                    "ws_id": "WS-K2",
                    "depends_on": ["WS-K0"],
                    "steps": [shell_step("k2", "echo k2 >> ran.log")],
                },
            ],
        }
    )
    result = project.uet("run", "bundle.yaml", "--skip-workstream", "WS-K0")
    assert result.code == 0
    assert project.lines("ran.log") == ["k1"]
    states = {s["step_id"]: s["status"] for s in project.status()["steps"]}
    assert states == {"k0": "skipped", "k1": "succeeded", "k2": "skipped"}
    # skipped work is not done work: the next full run does it
    assert project.uet("run", "bundle.yaml").code == 0
    assert sorted(project.lines("ran.log")) == ["k0", "k1", "k2"]
    bad = project.uet("run", "bundle.yaml", "--skip-workstream", "WS-K9")
    assert bad.code == 3 and "no such workstream" in bad.err


def test_second_concurrent_run_is_refused(project: Project) -> None:
    project.bundle(one_ws(shell_step("long", "sleep 300")))  # running while the second starts
    proc = start_run(project.root)
    assert proc.stdout is not None
    first_line = proc.stdout.readline()
    try:
        second = project.uet("run", "bundle.yaml")
    finally:
        proc.kill()
        proc.wait()
        kill_left_tools(project.root)  # the tool outlives kill -9 of its runner
    assert second.code == 2
    assert f"already running: run {first_line.split()[1]}" in second.err


def test_corrupt_state_db_is_explained_not_reset(project: Project) -> None:
    project.bundle(one_ws(shell_step("a", "true")))
    (project.root / ".uet").mkdir()
    db = project.root / ".uet" / "state.db"
    db.write_bytes(b"this is not sqlite" * 100)
    result = project.uet("run", "bundle.yaml")
    assert result.code == 2
    assert "cannot be used: it is not a SQLite database" in result.err
    assert "uet doctor" in result.err
    assert "Traceback" not in result.err
    assert db.read_bytes().startswith(b"this is not sqlite")


def test_newer_schema_is_refused(project: Project) -> None:
    project.bundle(one_ws(shell_step("a", "true")))
    assert project.uet("run", "bundle.yaml").code == 0
    conn = sqlite3.connect(project.root / ".uet" / "state.db")
    conn.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    conn.commit()
    result = project.uet("status")
    assert result.code == 2 and "newer uet-doit" in result.err


def test_unwritable_state_dir_fails_before_any_step(project: Project) -> None:
    import os

    project.bundle(one_ws(shell_step("a", "echo a >> ran.log")))
    (project.root / ".uet").mkdir()
    os.chmod(project.root / ".uet", 0o500)
    try:
        if os.access(project.root / ".uet", os.W_OK):  # root ignores modes
            (project.root / ".uet").rmdir()
            (project.root / ".uet").write_text("a file where a folder should be")
        result = project.uet("run", "bundle.yaml")
    finally:
        os.chmod(project.root / ".uet", 0o700)
    assert result.code == 2 and "ERROR: cannot" in result.err
    assert not (project.root / "ran.log").exists()
