"""The live progress reporter: a tree on a terminal, plain lines elsewhere, cheap per event."""

from __future__ import annotations

import io
import os
import re
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from uet_doit.observe.monitor import status_text
from uet_doit.observe.progress import LiveReporter, choose_reporter
from uet_doit.observe.reporting import JsonLinesReporter, PlainReporter
from uet_doit.observe.status import RunStatus, StepStatus

from support import Project, shell_step, wait_for

ESC = "\x1b["


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def two_workstreams(project: Project) -> Path:
    return project.bundle(
        {
            "bundle_id": "live",
            "bundle_name": "Live Demo",
            "max_cost_usd": 5,
            "workstreams": [
                {
                    "ws_id": "WS-A",
                    "name": "Alpha things",
                    "max_cost_usd": 2,
                    "steps": [shell_step("a-one", "true"), shell_step("a-two", "true")],
                },
                {
                    "ws_id": "WS-B",
                    "depends_on": ["WS-A"],
                    "steps": [shell_step("b-one", "true"), shell_step("b-bad", "exit 3")],
                },
            ],
        }
    )


def run_live(
    monkeypatch: pytest.MonkeyPatch, root: Path, bundle: Path, stream: io.StringIO, jobs: int = 2
) -> int:
    """`uet run` in-process with the live reporter writing to `stream` as its stdout."""
    from uet_doit.bundle.loader import load_bundle
    from uet_doit.runner import RunOptions, execute
    from uet_doit.tools.routing import default_known_tools

    monkeypatch.setattr(sys, "stdout", stream)
    opts = RunOptions(jobs=jobs, parallel_type="thread", keep_going=True, reporter="live")
    try:
        return execute(
            load_bundle(bundle, root, known_tools=default_known_tools()),
            bundle,
            root,
            opts,
            out=stream,
        )
    finally:
        os.environ.pop("UET_RUN_ID", None)


def test_not_a_terminal_gives_one_plain_line_per_event(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI", raising=False)
    out = io.StringIO()
    code = run_live(monkeypatch, project.root, two_workstreams(project), out)
    text = out.getvalue()
    assert code == 1
    assert ESC not in text
    starts = [ln for ln in text.splitlines() if ln.startswith("start ")]
    assert sorted(ln.split()[1] for ln in starts) == [
        "live:a-one",
        "live:a-two",
        "live:b-bad",
        "live:b-one",
    ]
    assert len([ln for ln in text.splitlines() if ln.startswith("done ")]) == 3
    assert "FAILED live:b-bad" in text
    assert "3 ran, 0 up to date, 1 failed" in text


def test_ci_turns_a_terminal_into_plain_lines(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    out = FakeTty()
    run_live(monkeypatch, project.root, two_workstreams(project), out)
    assert ESC not in out.getvalue()
    assert "start  live:a-one" in out.getvalue()


def test_terminal_draws_the_tree(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    out = FakeTty()
    code = run_live(monkeypatch, project.root, two_workstreams(project), out)
    text = out.getvalue()
    assert code == 1
    assert ESC in text
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)
    assert "=== Live Demo ===" in plain
    assert "WS-A: Alpha things" in plain
    assert re.search(r"WS-A: Alpha things \.+ DONE\s+\$0\.00 / \$2\.00", plain)
    assert re.search(r"WS-B \.+ FAILED \(1/2 steps\)", plain)
    for step in ("a-one", "a-two", "b-one"):
        assert f"✔ {step}" in plain
    assert "✖ b-bad (FAILED: unknown)" in plain
    assert "Progress: 75% (3/4) | Cost: $0.00 / $5.00" in plain
    # the failure's details and the summary still follow the tree
    assert "--- b-bad ---" in plain
    assert plain.rstrip().splitlines()[-2].startswith("3 ran, 0 up to date, 1 failed")


def test_no_color_keeps_the_tree_without_colours(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    out = FakeTty()
    run_live(monkeypatch, project.root, two_workstreams(project), out)
    text = out.getvalue()
    assert "=== Live Demo ===" in text
    assert not re.search(r"\x1b\[[0-9;]*3[0-7]m", text)  # no foreground colours


def fake_task(name: str, ws: str) -> Any:
    return SimpleNamespace(name=f"fast:{name}", meta={"uet": {"ws_id": ws, "tool": "shell"}})


def test_events_are_cheap_and_need_no_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("UET_RUN_ID", raising=False)
    out = FakeTty()
    reporter = LiveReporter(out, {})
    tasks = [fake_task(f"s{i:03d}", f"W{i // 50}") for i in range(300)]
    reporter.initialize({t.name: t for t in tasks}, [])
    began = time.perf_counter()
    for task in tasks:
        reporter.execute_task(task)
        reporter.add_success(task)
    took = time.perf_counter() - began
    reporter.complete_run()
    assert took < 10, f"300 step events took {took:.2f}s"  # not a query per event; loaded CI
    assert not (tmp_path / ".uet").exists()  # no run id: nothing was queried or written
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue())
    assert "✔ s299" in text
    assert "Progress: 100% (300/300)" in text


def test_choose_reporter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    assert choose_reporter("json", FakeTty()) is JsonLinesReporter
    assert choose_reporter("plain", FakeTty()) is PlainReporter
    assert choose_reporter("live", io.StringIO()) is LiveReporter
    assert choose_reporter(None, FakeTty()) is LiveReporter
    assert choose_reporter(None, io.StringIO()) is PlainReporter
    monkeypatch.setenv("CI", "1")
    assert choose_reporter(None, FakeTty()) is PlainReporter


def test_tree_shows_every_state_eta_and_budget() -> None:
    now = time.time()
    states: list[tuple[str, str, dict[str, Any]]] = [
        ("s-done", "succeeded", {"started": now - 5, "ended": now - 2, "cost_usd": 0.5}),
        ("s-cached", "up_to_date", {}),
        ("s-run", "running", {"started": now - 3}),
        ("s-quiet", "running", {"started": now - 3, "silent_seconds": 40.0}),
        ("s-retry", "retrying", {"attempts": 2, "last_error": "timeout: waiting 2.0s"}),
        ("s-wait", "pending", {}),
        ("s-fail", "failed", {"failure_class": "timeout", "attempts": 3}),
        ("s-skip", "skipped", {}),
        ("s-pause", "paused", {"last_error": "budget of WS-1 reached"}),
        ("s-block", "blocked", {"last_error": "on previous"}),
    ]
    steps = [StepStatus(sid, "WS-1", "shell", st, **extra) for sid, st, extra in states]
    steps += [StepStatus("later", "WS-2", "shell", "pending")]
    status = RunStatus(
        run_id="r1",
        bundle_id="b",
        status="running",
        progress_pct=20.0,
        current_step="s-run",
        completed_count=2,
        total_count=10,
        total_cost_usd=0.5,
        started=now - 10,
        ended=None,
        eta_seconds=12000.0,
        steps=steps,
    )
    text = status_text(status)
    assert ESC not in text
    assert "=== b ===" in text
    assert re.search(r"WS-1 \.+ IN PROGRESS \(3/10 steps\)\s+\$0\.50", text)
    assert re.search(r"WS-2 \.+ PENDING", text)
    for expected in (
        "✔ s-done (3.0s, $0.50)",
        "≡ s-cached (up to date)",
        "▶ s-run (running 3.",
        "▶ s-quiet (running 3.0s, silent 40s)",
        "↻ s-retry (retrying: timeout: waiting 2.0s, attempt 2)",
        "… s-wait (waiting)",
        "✖ s-fail (FAILED: timeout, attempt 3)",
        "⤼ s-skip (skipped)",
        "⏸ s-pause (paused: budget of WS-1 reached)",
        "⛔ s-block (blocked: on previous)",
        "Progress: 20% (2/10) | Cost: $0.50 | ETA: 3.3 hours",
    ):
        assert expected in text, expected
    # the live view lists steps only where something is happening
    active = status_text(status, expand="active")
    assert "s-run" in active
    assert "later" not in active


@pytest.mark.slow
def test_live_tree_redraws_in_place_in_a_real_terminal(tmp_path: Path) -> None:
    """In tmux (a real TTY) the tree is redrawn in place: one frame, not a scroll of lines.
    Each frame is waited for (with a deadline), never expected after a fixed sleep: the
    first step holds until the test has seen it running."""
    import shutil
    import subprocess

    import yaml

    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    hold = f"while [ ! -e {tmp_path / 'go'} ]; do sleep 0.05; done"
    steps = [{"step_id": "t0", "command": hold}]
    steps += [{"step_id": f"t{i}", "command": "sleep 0.1"} for i in range(1, 6)]
    (tmp_path / "b.yaml").write_text(
        yaml.safe_dump(
            {
                "bundle_id": "tty",
                "workstreams": [{"ws_id": "WS-T", "name": "Week 1", "steps": steps}],
            }
        )
    )
    session = f"uet-test-{os.getpid()}"
    # the pane says when uet has exited, and stays (the session is killed below)
    env_cmd = (
        f"cd {tmp_path} && env -u CI {sys.executable} -m uet_doit run b.yaml; "
        "echo uet-exited-$?; sleep 600"
    )
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", "100", "-y", "30", env_cmd], check=True
    )

    def frame() -> str:
        return subprocess.run(
            ["tmux", "capture-pane", "-p", "-t", session],
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    try:
        during = wait_for(frame, lambda text: "WS-T: Week 1" in text and "running" in text)
        (tmp_path / "go").touch()
        after = wait_for(frame, lambda text: "uet-exited-" in text)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], check=False)
    assert "WS-T: Week 1" in during and "running" in during, during
    assert "uet-exited-0" in after and "Progress:" in after and "100%" in after, after
    # redrawn in place: each step appears once on the final screen, no plain "start" lines
    assert after.count("t3") == 1
    assert "start  tty:" not in after


def test_a_running_step_is_silent_from_half_its_stall_timeout() -> None:
    from uet_doit.observe.status import silent_for

    assert silent_for(None, 0.0, 1000.0) is None  # no stall watch: never silent
    assert silent_for(60.0, 100.0, 129.0) is None
    assert silent_for(60.0, 100.0, 130.0) == 30.0
