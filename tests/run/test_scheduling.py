"""Which step starts first and which may not run beside others, seen through `uet` and `doit`.

Steps write `start X` / `end X` lines to one log; order of those lines is what is checked
(never wall-clock times).
"""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

from support import PY, Project

DODO = """
from uet_doit import tasks_from_bundle
from uet_doit.run.dodo_support import DOIT_CONFIG
task_b = tasks_from_bundle("b.yaml")
"""


def logged(step_id: str, **extra: Any) -> dict[str, Any]:
    """A shell step that records its start and end; the pause makes overlaps likely."""
    cmd = f"echo start {step_id} >> log; sleep 0.2; echo end {step_id} >> log"
    return {"step_id": step_id, "command": cmd, **extra}


def events(project: Project) -> list[tuple[str, str]]:
    return [tuple(line.split()) for line in project.lines("log")]  # type: ignore[misc]


def overlapping(log: list[tuple[str, str]], step: str) -> set[str]:
    """Steps running at some point while `step` ran."""
    running: set[str] = set()
    seen: set[str] = set()
    for what, who in log:
        if what == "start":
            if step in running or who == step:
                seen |= running
            running.add(who)
        else:
            running.discard(who)
    return seen - {step}


def serial_bundle() -> dict[str, Any]:
    return {
        "bundle_id": "b",
        "workstreams": [
            {
                "ws_id": "SERIAL",
                "parallel_ok": False,
                "steps": [logged(f"s{i}") for i in (1, 2, 3)],
            },
            {
                "ws_id": "FREE",
                "steps": [logged("f1"), logged("f2", parallel_ok=False), logged("f3")],
            },
        ],
    }


def check_serial_and_alone(log: list[tuple[str, str]]) -> None:
    serial = [(what, who) for what, who in log if who.startswith("s")]
    assert serial == [(w, f"s{i}") for i in (1, 2, 3) for w in ("start", "end")]
    assert overlapping(log, "f2") == set()
    assert len(log) == 12


def test_parallel_ok_false_runs_a_workstream_in_turn_and_a_step_alone(project: Project) -> None:
    project.bundle(serial_bundle())
    res = project.uet("run", "bundle.yaml", "-n", "3")
    assert res.code == 0, res.out + res.err
    check_serial_and_alone(events(project))


def test_plain_doit_honours_parallel_ok_too(project: Project) -> None:
    project.bundle(serial_bundle(), "b.yaml")
    project.write("dodo.py", DODO)
    env = {k: v for k, v in os.environ.items() if not k.startswith("UET_")}
    done = subprocess.run(
        [PY, "-m", "doit", "run", "-n", "3", "b"],
        cwd=project.root,
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    check_serial_and_alone(events(project))


def test_list_and_dry_run_show_parallel_ok(project: Project) -> None:
    project.bundle(serial_bundle())
    listed = project.uet("list", "bundle.yaml")
    lines = {line.split()[0]: line for line in listed.out.splitlines()}
    assert lines["b:s1"].endswith("(one at a time in its workstream)")
    assert lines["b:f2"].endswith("(runs alone)")
    assert "(" not in lines["b:f1"]
    rows = {
        r["step_id"]: r["runs"]
        for r in json.loads(project.uet("list", "bundle.yaml", "--json").out)
    }
    assert rows == {
        "s1": "in turn",
        "s2": "in turn",
        "s3": "in turn",
        "f1": "",
        "f2": "alone",
        "f3": "",
    }
    dry = project.uet("run", "bundle.yaml", "--dry-run").out
    assert "SERIAL: SERIAL (parallel_ok: false: one step at a time, in order)" in dry
    assert any(
        line.split()[0] == "f2" and "runs alone" in line
        for line in dry.splitlines()
        if line.strip()
    )
