"""A run's live state belongs to the run (run/doit/action.py): a Ctrl-C stops every run of
the process, and leaves nothing that stops the next one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from uet_doit.state.records import RunState, StepState

from support import Project, shell_step


def project_in(root: Path, name: str, steps: int) -> Path:
    """A project whose steps each write `name` and their number, through the reaper."""
    root.mkdir(parents=True, exist_ok=True)
    commands = [
        shell_step(f"s{i}", f"echo {name}-{i} > out{i}.txt", create_files=[f"out{i}.txt"])
        for i in range(steps)
    ]
    project = Project(root)
    return project.bundle({"bundle_id": name, "workstreams": [{"ws_id": "W", "steps": commands}]})


#: two runs side by side in one process, then Ctrl-C once all four tools run, then a third
CTRL_C = """
import json, os, signal, sys, threading, time
from pathlib import Path
import uet_doit

here = Path(sys.argv[1])
pids = [here / p / f"pid{i}" for p in ("a", "b") for i in (0, 1)]
answers = {}

def interrupt():
    deadline = time.monotonic() + 120
    while not all(p.exists() and p.read_text().strip() for p in pids):
        if time.monotonic() > deadline:
            os._exit(9)
        time.sleep(0.05)
    os.kill(os.getpid(), signal.SIGINT)

def run(name):
    answers[name] = uet_doit.run_bundle(here / name / "bundle.yaml", here / name, jobs=2)

side = threading.Thread(target=run, args=("b",))
side.start()
threading.Thread(target=interrupt, daemon=True).start()
run("a")
side.join(120)
run("c")
told = {n: [o.exit_code, o.status, sorted(o.states.values())] for n, o in answers.items()}
print(json.dumps(told))
"""


@pytest.mark.slow
def test_ctrl_c_stops_every_run_of_the_process_and_the_next_run_runs(tmp_path: Path) -> None:
    import json
    import subprocess

    from support import PY, wait_gone

    for name in ("a", "b"):
        steps = [shell_step(f"s{i}", f"echo $$ > pid{i}; sleep 120") for i in (0, 1)]
        Project(tmp_path / name).bundle(
            {"bundle_id": name, "workstreams": [{"ws_id": "W", "steps": steps}]}
        )
    project_in(tmp_path / "c", "c", 1)
    env = {k: v for k, v in os.environ.items() if not k.startswith("UET_")}
    done = subprocess.run(
        [PY, "-c", CTRL_C, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    answers = json.loads(done.stdout.splitlines()[-1])
    assert answers["a"] == [130, RunState.INTERRUPTED, [StepState.INTERRUPTED] * 2]
    assert answers["b"] == [130, RunState.INTERRUPTED, [StepState.INTERRUPTED] * 2]
    assert answers["c"] == [0, RunState.SUCCEEDED, [StepState.SUCCEEDED]]  # no stop left over
    for name in ("a", "b"):
        for i in (0, 1):
            assert wait_gone(int((tmp_path / name / f"pid{i}").read_text())), (name, i)
