"""Which step starts first and which may not run beside others, seen through `uet` and `doit`.

Steps write `start X` / `end X` lines to one log; order of those lines is what is checked
(never wall-clock times).
"""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

import pytest

from support import PY, Project

DODO = """
from uet_doit import tasks_from_bundle
from uet_doit.run.doit.dodo_support import DOIT_CONFIG
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


@pytest.mark.slow
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


def starts(project: Project) -> list[str]:
    return [who for what, who in events(project) if what == "start"]


def test_foreground_steps_start_before_background_ones(project: Project) -> None:
    project.bundle(
        {
            "bundle_id": "b",
            "workstreams": [
                {"ws_id": "BG", "priority": "background", "steps": [logged("bg1"), logged("bg2")]},
                {"ws_id": "FG", "priority": "foreground", "steps": [logged("fg1"), logged("fg2")]},
            ],
        }
    )
    assert project.uet("run", "bundle.yaml").code == 0
    assert starts(project) == ["fg1", "fg2", "bg1", "bg2"]


@pytest.mark.slow
def test_the_longest_remaining_path_starts_first(project: Project) -> None:
    """4 free steps listed before a 4-step chain: listing order would start the free ones."""
    chain = [logged("c1")] + [logged(f"c{i}", depends_on=[f"c{i - 1}"]) for i in (2, 3, 4)]
    free = [logged(f"f{i}") for i in (1, 2, 3, 4)]
    project.bundle(
        {
            "bundle_id": "b",
            "workstreams": [{"ws_id": "FREE", "steps": free}, {"ws_id": "CHAIN", "steps": chain}],
        }
    )
    assert project.uet("run", "bundle.yaml").code == 0
    # c4 and the free steps have one step of work left each: listing order breaks the tie
    assert starts(project) == ["c1", "c2", "c3", "f1", "f2", "f3", "f4", "c4"]


def test_expected_durations_come_from_history_then_tool_and_kind() -> None:
    from uet_doit.bundle.model import Bundle
    from uet_doit.run.scheduling import PastDuration, expected_durations, plan_schedule

    bundle = Bundle.model_validate(
        {
            "bundle_id": "b",
            "workstreams": [
                {
                    "ws_id": "W",
                    "steps": [
                        {"step_id": "quick", "command": "true"},
                        {"step_id": "docs", "tool": "claude", "task_kind": "docs"},
                        {"step_id": "code", "tool": "claude", "task_kind": "code"},
                        {"step_id": "new", "tool": "codex"},
                    ],
                }
            ],
        }
    )
    past = [
        PastDuration("other-docs", "claude", 100.0),
        PastDuration("docs", "claude", 40.0),
        PastDuration("code", "claude", 300.0),
    ]
    got = expected_durations(bundle, past, {"quick": 2.0})
    assert got["quick"] == 2.0  # its own median
    assert got["docs"] == 40.0  # claude + docs: the one docs attempt of this bundle
    assert got["code"] == 300.0
    assert got["new"] == 1.0  # nothing known of codex
    ranks = plan_schedule(bundle, got)
    assert sorted(ranks, key=lambda s: ranks[s].rank) == ["code", "docs", "quick", "new"]


def test_with_no_history_the_step_forecast_longest_starts_first(project: Project) -> None:
    """No run yet: an AI step reading a large file and writing several ranks ahead of a
    small one listed before it; a shell step (nothing to forecast) counts 1 s."""
    from uet_doit.bundle.model import Bundle
    from uet_doit.run.scheduling import DEFAULT_DURATION, learned_schedule
    from uet_doit.state.store import RunStore

    project.write("big.md", "word " * 200_000)  # ~250k tokens to read
    bundle = Bundle.model_validate(
        {
            "bundle_id": "b",
            "workstreams": [
                {
                    "ws_id": "W",
                    "steps": [
                        {"step_id": "quick", "command": "true"},
                        {"step_id": "short", "tool": "claude", "instruction": "Fix a typo."},
                        {
                            "step_id": "long",
                            "tool": "claude",
                            "instruction": "Split the guide into chapters.",
                            "files": ["big.md"],
                            "create_files": [f"docs/ch{i}.md" for i in range(6)],
                        },
                    ],
                }
            ],
        }
    )
    store = RunStore(project.root)
    ranks = learned_schedule(bundle, store)
    assert sorted(ranks, key=lambda s: ranks[s].rank) == ["long", "short", "quick"]
    assert ranks["quick"].remaining == DEFAULT_DURATION
    assert ranks["long"].remaining > 2 * ranks["short"].remaining
    assert not store.exists()  # ranking reads, never creates the run store
