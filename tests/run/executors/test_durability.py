"""kill -9 at random instants, then run again: every side effect exactly once."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from kill_soak import STEPS, kill_and_resume
from support import Project, kill_left_tools, start_run, wait_for, wait_gone

#: runs killed at random instants: `pytest -m "not slow"` leaves this module out
pytestmark = pytest.mark.slow

RNG = random.Random(20261125)
KILL_TIMES = [round(RNG.uniform(0.35, 1.0), 2) for _ in range(2)]


@pytest.mark.parametrize("ptype", ["process", "thread"])
@pytest.mark.parametrize("kill_after", KILL_TIMES)
def test_killed_run_resumes_with_every_side_effect_once(
    tmp_path: Path, ptype: str, kill_after: float
) -> None:
    counts = kill_and_resume(tmp_path, ptype, kill_after)
    assert len(counts) == STEPS
    assert {k: v for k, v in counts.items() if v != 1} == {}


def test_backend_commits_each_task_before_the_run_ends(project: Project) -> None:
    """While a run is still going, the steps it finished are already in .doit.db."""
    project.bundle(
        {
            "bundle_id": "d",
            "workstreams": [
                {
                    "ws_id": "W",
                    "steps": [
                        {"step_id": "first", "command": "true"},
                        {"step_id": "second", "command": "sleep 29", "depends_on": ["first"]},
                    ],
                }
            ],
        }
    )
    proc = start_run(project.root, "start  d:second")
    from doit.dependency import JSONCodec

    from uet_doit.state.doit_backend import DurableSqliteDB

    db = DurableSqliteDB(str(project.root / ".doit.db"), JSONCodec())
    saved = db.in_("d:first")
    proc.kill()
    proc.wait()
    kill_left_tools(project.root)  # the tool outlives kill -9 of its runner
    assert saved


def test_sigterm_is_an_interrupt_with_state_recorded(project: Project) -> None:
    import signal

    project.bundle(
        {
            "bundle_id": "t",
            "workstreams": [
                {
                    "ws_id": "W",
                    "steps": [
                        {
                            "step_id": "long",
                            "command": ["sh", "-c", "sleep 300 & echo $! > bg.pid; sleep 300"],
                        }
                    ],
                }
            ],
        }
    )
    proc = start_run(project.root, "start")
    pid_file = project.root / "bg.pid"
    wait_for(lambda: pid_file.exists() and pid_file.read_text().endswith("\n"), bool, 60)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 130  # the step would sleep 300 s
    status = project.status()
    assert status["status"] == "interrupted"
    assert status["steps"][0]["status"] == "interrupted"

    pid = int(project.read("bg.pid"))
    assert wait_gone(pid), "the step's processes outlived the interrupt"
