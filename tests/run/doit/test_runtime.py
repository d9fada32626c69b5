"""A run's live state belongs to the run: many runs in one process, one after another and
side by side, each get their own results and leave nothing behind (run/doit/action.py)."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import pytest

import uet_doit
from uet_doit.observe.outcome import RunResult
from uet_doit.run.doit.action import Runtime
from uet_doit.state.records import RunState, StepState

from support import Project, shell_step

Snapshot = tuple[dict[int, str], set[str], set[int]]


def snapshot() -> Snapshot:
    """Open descriptors (fd -> what it points at), live threads, child processes."""
    fds = {}
    for entry in Path("/proc/self/fd").iterdir():
        try:
            fds[int(entry.name)] = os.readlink(entry)
        except OSError:  # the descriptor listing the folder itself, closed by now
            continue
    threads = {f"{t.name}:{t.ident}" for t in threading.enumerate()}
    me = str(os.getpid())
    children = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        if fields[1] == me:  # ppid: reapers, tools, zombies not waited for
            children.add(int(stat.parent.name))
    return fds, threads, children


def project_in(root: Path, name: str, steps: int) -> Path:
    """A project whose steps each write `name` and their number, through the reaper."""
    root.mkdir(parents=True, exist_ok=True)
    commands = [
        shell_step(f"s{i}", f"echo {name}-{i} > out{i}.txt", create_files=[f"out{i}.txt"])
        for i in range(steps)
    ]
    project = Project(root)
    return project.bundle({"bundle_id": name, "workstreams": [{"ws_id": "W", "steps": commands}]})


def check(outcome: RunResult, root: Path, name: str, steps: int) -> None:
    assert outcome.status == RunState.SUCCEEDED, outcome.reason
    assert outcome.states == {f"s{i}": StepState.SUCCEEDED for i in range(steps)}
    assert outcome.run_id.startswith(f"{name}-")
    for i in range(steps):
        assert (root / f"out{i}.txt").read_text().strip() == f"{name}-{i}"


@pytest.mark.slow
def test_runs_one_after_another_and_side_by_side_leave_no_run_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("UET_RUN_ID", raising=False)
    warm = tmp_path / "warm"
    uet_doit.run_bundle(project_in(warm, "warm", 1), warm)  # imports, caches: not run state
    before = snapshot()
    stdout = sys.stdout

    for n in range(3):
        root = tmp_path / f"seq{n}"
        bundle = project_in(root, f"seq{n}", 3)
        check(uet_doit.run_bundle(bundle, root, jobs=1 + n), root, f"seq{n}", 3)
        assert Runtime.live() == []
        assert sys.stdout is stdout  # doit's threads swap it (run/doit/compiler.py NO_CAPTURE)

    outcomes: dict[str, RunResult] = {}
    errors: list[BaseException] = []

    def run(name: str) -> None:
        root = tmp_path / name
        try:
            outcomes[name] = uet_doit.run_bundle(project_in(root, name, 4), root, jobs=2)
        except BaseException as exc:  # re-raised below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(name,)) for name in ("left", "right")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors
    assert not any(t.is_alive() for t in threads)
    for name in ("left", "right"):
        check(outcomes[name], tmp_path / name, name, 4)
    assert outcomes["left"].run_id != outcomes["right"].run_id

    assert Runtime.live() == []
    fds, threads_now, children = snapshot()
    assert fds == before[0], "descriptors left open (store connections, pipes of a reaper)"
    assert threads_now == before[1], "threads left running (a reaper's reader)"
    assert children <= before[2], "child processes left (a reaper, a tool)"
    assert sys.stdout is stdout


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
from uet_doit.run.doit.action import Runtime
told = {n: [o.exit_code, o.status, sorted(o.states.values())] for n, o in answers.items()}
told["live"] = len(Runtime.live())
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
    assert answers["live"] == 0  # no Runtime of the interrupted runs is left open
    for name in ("a", "b"):
        for i in (0, 1):
            assert wait_gone(int((tmp_path / name / f"pid{i}").read_text())), (name, i)
