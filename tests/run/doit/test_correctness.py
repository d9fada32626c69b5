"""What users hit first: plain doit runs, interruptions, skips, missing inputs, missing tools."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from support import PY, Project, shell_step, wait_gone, wait_until

DODO = """
from uet_doit import tasks_from_bundle
from uet_doit.run.doit.dodo_support import DOIT_CONFIG
task_a = tasks_from_bundle("a.yaml")
task_b = tasks_from_bundle("b.yaml")
"""


def one_ws(bundle_id: str, *steps: dict[str, Any], **ws: Any) -> dict[str, Any]:
    return {"bundle_id": bundle_id, "workstreams": [{"ws_id": "W", "steps": list(steps), **ws}]}


def doit(root: Path, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("UET_")}
    return subprocess.run(
        [PY, "-m", "doit", *args],
        check=False,
        cwd=root,
        capture_output=True,
        text=True,
        env=env,
        **kw,
    )


@pytest.mark.slow
def test_plain_doit_records_the_run_of_the_bundle_it_runs(project: Project) -> None:
    project.bundle(one_ws("a", shell_step("a1", "echo a >> a.log")), "a.yaml")
    project.bundle(one_ws("b", shell_step("b1", "echo b >> b.log")), "b.yaml")
    project.write("dodo.py", DODO)
    assert doit(project.root, "run", "b").returncode == 0
    first = project.status()
    assert first["bundle_id"] == "b" and first["run_id"].startswith("b-")
    assert [s["step_id"] for s in first["steps"]] == ["b1"]
    assert doit(project.root, "run", "--always-execute", "b").returncode == 0
    runs = project.uet("runs").out.splitlines()
    assert len({line.split()[0] for line in runs if line.startswith("b-")}) == 2


@pytest.mark.slow  # plain doit in a child, interrupted
def test_ctrl_c_under_plain_doit_records_the_interruption(project: Project) -> None:
    project.bundle(one_ws("a", shell_step("a1", "true")), "a.yaml")
    project.bundle(one_ws("b", shell_step("b1", "sleep 300 & echo $! > bg.pid; wait")), "b.yaml")
    project.write("dodo.py", DODO)
    env = {k: v for k, v in os.environ.items() if not k.startswith("UET_")}
    proc = subprocess.Popen(
        [PY, "-m", "doit", "run", "-n", "2", "-P", "process", "b"],
        cwd=project.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    assert wait_until(lambda: (project.root / "bg.pid").exists() and project.read("bg.pid").strip())
    os.killpg(proc.pid, signal.SIGINT)
    _out, err = proc.communicate(timeout=60)  # the step would sleep 300 s
    assert proc.returncode == 130
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    status = project.status()
    assert status["status"] == "interrupted"
    assert status["steps"][0]["status"] == "interrupted"
    pid = int(project.read("bg.pid"))
    assert wait_gone(pid), "the step's tool outlived Ctrl-C"


def test_skipped_workstream_criteria_are_not_evaluated(project: Project) -> None:
    project.bundle(
        {
            "bundle_id": "s",
            "workstreams": [
                {
                    "ws_id": "WS-K0",
                    "steps": [shell_step("k0", "echo k0 > k0.txt")],
                    "completion_criteria": [{"description": "k0 done", "files_exist": ["k0.txt"]}],
                },
                {"ws_id": "WS-K1", "steps": [shell_step("k1", "true")]},
            ],
        }
    )
    result = project.uet("run", "bundle.yaml", "--skip-workstream", "WS-K0")
    assert result.code == 0, result.out + result.err
    assert "[-] WS-K0: k0 done (not evaluated" in result.out
    assert "UNMET" not in result.out


def test_a_missing_input_fails_the_step_before_its_tool_and_status_agrees(
    project: Project,
) -> None:
    project.bundle(
        one_ws(
            "m",
            shell_step("reads", "echo ran >> ran.log", files=["absent.md"]),
            shell_step("after", "true", depends_on=["reads"]),
        )
    )
    result = project.uet("run", "bundle.yaml")
    assert result.code == 1
    assert "FAILED m:reads" in result.out and "absent.md" in result.out
    assert not (project.root / "ran.log").exists()
    states = {s["step_id"]: s["status"] for s in project.status()["steps"]}
    assert states == {"reads": "failed", "after": "blocked"}


def test_a_validation_command_that_does_not_exist_is_not_paid_again(project: Project) -> None:
    project.bundle(
        one_ws(
            "v",
            shell_step(
                "s",
                "echo ran >> ran.log",
                validation={"command": "no-such-checker --strict"},
                max_fix_attempts=2,
            ),
        )
    )
    result = project.uet("run", "bundle.yaml")
    assert result.code == 1
    [step] = project.status()["steps"]
    assert step["failure_class"] == "bundle_error" and step["attempts"] == 1
    assert "validation command" in step["last_error"]
    assert project.lines("ran.log") == ["ran"]


def test_resume_names_an_edited_step_that_had_not_run(project: Project) -> None:
    project.bundle(one_ws("r", shell_step("a", "false"), shell_step("b", "true", depends_on=["a"])))
    run_id = project.uet("run", "bundle.yaml").out.split()[1]
    project.bundle(
        one_ws("r", shell_step("a", "true"), shell_step("b", "echo new", depends_on=["a"]))
    )
    second = project.uet("run", "bundle.yaml", "--resume", run_id)
    assert "changed steps re-plan: a, b" in second.out
    assert second.code == 0


def test_run_id_comes_first_and_summary_counts_attempts(project: Project) -> None:
    flaky = (
        "n=$(cat n 2>/dev/null || echo 0); n=$((n+1)); echo $n > n; "
        'if [ $n -le 1 ]; then echo "503 Service Unavailable" >&2; exit 1; fi'
    )
    retry = {"max_retries": 2, "initial_delay": 0, "max_delay": 0, "jitter": 0}
    project.bundle(one_ws("o", shell_step("flaky", flaky, resilience=retry, files=["gone.md"])))
    project.write("gone.md", "x")
    result = project.uet("run", "bundle.yaml", "--reporter", "plain")
    assert result.out.splitlines()[0].startswith("run o-")
    assert "done   o:flaky" in result.out and "2 attempts" in result.out


def test_shell_steps_get_the_folders_of_their_outputs(project: Project) -> None:
    project.bundle(
        one_ws("f", shell_step("w", "echo hi > out/deep/x.txt", create_files=["out/deep/x.txt"]))
    )
    assert project.uet("run", "bundle.yaml").code == 0
    assert project.read("out/deep/x.txt") == "hi\n"


def test_a_negative_cost_is_rejected_not_subtracted(project: Project) -> None:
    report = 'echo \'{"cost_usd": -5}\' > "$UET_RESULT_FILE"'
    paid = 'echo \'{"cost_usd": 0.25}\' > "$UET_RESULT_FILE"'
    project.bundle(one_ws("c", shell_step("paid", paid), shell_step("neg", report)))
    assert project.uet("run", "bundle.yaml").code == 0
    data = json.loads(project.uet("cost", "--json").out)
    assert data["run_cost_usd"] == pytest.approx(0.25)
    events = project.root / ".uet" / "state.db"
    assert events.exists()
    out = project.uet("status", "--json").out
    assert '"cost_usd": -5' not in out


@pytest.mark.slow
def test_a_timeout_kills_what_the_step_started_outside_its_group(project: Project) -> None:
    code = "import os,time; os.setsid(); open('d.pid','w').write(str(os.getpid())); time.sleep(60)"
    daemon = f'{PY} -c "{code}" & wait'
    project.bundle(
        one_ws("t", shell_step("d", daemon, timeout_seconds=1.5, resilience={"max_retries": 0}))
    )
    assert project.uet("run", "bundle.yaml").code == 1
    pid = int(project.read("d.pid"))
    assert wait_gone(pid), "a setsid daemon outlived its step's timeout"


def test_huge_n_is_capped_at_the_runnable_steps(project: Project) -> None:
    project.bundle(one_ws("n", *[shell_step(f"s{i}", "true") for i in range(3)]))
    result = project.uet("run", "bundle.yaml", "-n", "100000")
    assert result.code == 0
    from uet_doit.runner import MAX_JOBS, effective_jobs

    assert effective_jobs(100000, 3) == 3 and effective_jobs(100000, 10**6) == MAX_JOBS


@pytest.mark.slow
def test_group_sigint_ends_a_parallel_run_within_seconds(project: Project) -> None:
    steps = [shell_step(f"s{i}", "sleep 300") for i in range(4)]
    project.bundle(one_ws("g", *steps))
    env = {k: v for k, v in os.environ.items() if not k.startswith("UET_")}
    for _trial in range(3):
        proc = subprocess.Popen(
            [PY, "-m", "uet_doit", "run", "bundle.yaml", "-n", "4"],
            cwd=project.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,
            text=True,
        )
        assert proc.stdout is not None
        for line in proc.stdout:  # interrupted once its steps run, however long start-up took
            if line.startswith("start"):
                break
        started = time.monotonic()
        os.killpg(proc.pid, signal.SIGINT)
        proc.communicate(timeout=120)
        assert proc.returncode == 130
        assert time.monotonic() - started < 30  # within seconds, on a loaded 2-core CI too
    assert project.status()["status"] == "interrupted"


def test_empty_and_foreign_state_files_are_explained_and_left_alone(project: Project) -> None:
    import sqlite3

    project.bundle(one_ws("e", shell_step("a", "true")))
    (project.root / ".uet").mkdir()
    db = project.root / ".uet" / "state.db"
    db.write_bytes(b"")
    result = project.uet("run", "bundle.yaml")
    assert result.code == 2 and "empty file (0 bytes)" in result.err
    assert db.stat().st_size == 0
    db.unlink()
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE notes (x)")
    conn.commit()
    conn.close()
    before = db.read_bytes()
    result = project.uet("status")
    assert result.code == 2 and "database of another program" in result.err
    assert db.read_bytes() == before
    assert "Traceback" not in result.err


def test_a_store_missing_a_table_is_reported_as_damaged(project: Project) -> None:
    import sqlite3

    project.bundle(one_ws("d", shell_step("a", "true")))
    assert project.uet("run", "bundle.yaml").code == 0
    conn = sqlite3.connect(project.root / ".uet" / "state.db")
    conn.execute("DROP TABLE attempts")
    conn.commit()
    conn.close()
    result = project.uet("status")
    assert result.code == 2 and "missing" in result.err and "attempts" in result.err
    assert "Traceback" not in result.err


if sys.platform != "linux":  # pragma: no cover
    pytest.skip("process-tree tests need Linux /proc", allow_module_level=True)


def _run_child(cwd: Path, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("UET_")}
    return subprocess.Popen(
        [PY, "-m", "uet_doit", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


@pytest.mark.slow
def test_one_run_per_project_from_a_subfolder_and_without_the_lock_note(
    project: Project,
) -> None:
    project.bundle(
        one_ws("l", shell_step("long", "sleep 300"))
    )  # still running when the second starts
    (project.root / "sub").mkdir()
    first = _run_child(project.root, "run", "bundle.yaml")
    assert first.stdout is not None
    first_line = first.stdout.readline()
    try:
        (project.root / ".uet" / "run.lock").unlink()  # the note, not the lock
        from_sub = _run_child(project.root / "sub", "run", "../bundle.yaml")
        _out, err = from_sub.communicate(timeout=120)
    finally:
        first.kill()
        first.wait()
        from support import kill_left_tools

        kill_left_tools(project.root)
    assert from_sub.returncode == 2
    assert "this project is already running" in err, err
    assert first_line.startswith("run l-")
    assert not (project.root / "sub" / ".uet").exists()


def test_status_from_a_subfolder_reads_the_project(project: Project) -> None:
    project.bundle(one_ws("u", shell_step("a", "true")))
    assert project.uet("run", "bundle.yaml").code == 0
    (project.root / "deep" / "er").mkdir(parents=True)
    status = _run_child(project.root / "deep" / "er", "status", "--json")
    out, err = status.communicate(timeout=120)
    assert status.returncode == 0, err
    assert json.loads(out)["bundle_id"] == "u"


def test_doctor_names_a_damaged_store_and_changes_nothing(project: Project) -> None:
    import sqlite3

    project.bundle(one_ws("dr", shell_step("a", "true")))
    assert project.uet("run", "bundle.yaml").code == 0
    healthy = project.uet("doctor")
    assert healthy.code == 0 and "integrity check ok" in healthy.out
    db = project.root / ".uet" / "state.db"
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("DROP TABLE events")
    # the damage goes into the file itself: left in the WAL, any later close of a
    # connection (not the doctor's) would checkpoint it and change the bytes compared
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    before = db.read_bytes()
    result = project.uet("doctor")
    assert result.code == 2 and "tables missing: events" in result.out
    assert "what to do:" in result.out and ".recover" in result.out
    assert db.read_bytes() == before
    wal = db.with_name(db.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0  # nor written through the WAL


@pytest.mark.slow
def test_a_lost_reaper_is_one_worker_lost_attempt_then_a_retry(project: Project) -> None:
    from uet_doit.state.store import RunStore

    retry = {"max_retries": 2, "initial_delay": 0, "max_delay": 0, "jitter": 0}
    step = shell_step("s", "echo start >> starts.log; sleep 1; echo done >> done.log")
    project.bundle(one_ws("rl", {**step, "resilience": retry}))
    proc = _run_child(project.root, "run", "bundle.yaml")
    assert wait_until(lambda: project.lines("starts.log"))
    reapers = [
        int(e.name)
        for e in Path("/proc").glob("[0-9]*")
        if _parent_of(e) == proc.pid and b"uet_doit/tools/reaper.py" in _cmdline(e)
    ]
    assert len(reapers) == 1
    os.kill(reapers[0], signal.SIGKILL)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    store = RunStore(project.root)
    run_id = store.latest_run_id()
    assert run_id is not None
    classes = [a.failure_class for a in store.attempts(run_id)]
    assert classes == ["worker_lost", None]
    assert project.lines("done.log") == ["done"]  # the lost attempt's tool was stopped


def _parent_of(entry: Path) -> int:
    try:
        return int((entry / "stat").read_text().rsplit(")", 1)[-1].split()[1])
    except (OSError, ValueError):
        return -1


def _cmdline(entry: Path) -> bytes:
    try:
        return (entry / "cmdline").read_bytes()
    except OSError:
        return b""
