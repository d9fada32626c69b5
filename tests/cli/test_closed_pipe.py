"""`uet ... | head`: a reader that goes away prints no traceback and, for a run, changes
nothing about how it ends or what it records. Real pipes and real child processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from support import Project, quick_first, shell_step, start_run

#: a step that runs until the test creates `go` (ten minutes at most)
HOLD = "i=0; until [ -e go ] || [ $i -ge 12000 ]; do sleep 0.05; i=$((i+1)); done"


def uet_child(project: Project, *argv: str, stdout: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "UET_RUN_ID"}
    env["CI"] = "1"  # plain output, as in a pipe
    return subprocess.Popen(
        [sys.executable, "-m", "uet_doit", *argv],
        cwd=project.root,
        stdout=stdout,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,  # its own group: a test that times out stops all it started
    )


def finish(proc: subprocess.Popen[bytes]) -> str:
    """Its stderr once it ends; a hang fails the test (and stops what it started)."""
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"uet {proc.args!r} did not finish within 60 s")
    return err.decode()


def reader_gone_before_output(project: Project, *argv: str) -> tuple[int, str]:
    """Like `uet ... | true`: the read end is closed before the command prints anything."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = uet_child(project, *argv, stdout=write_end)
    finally:
        os.close(write_end)
    err = finish(proc)
    return proc.returncode, err


def test_errors_into_a_closed_pipe_keep_their_exit_code(project: Project) -> None:
    """`uet run missing.yaml 2>&1 | true`: the error has no reader, the exit code stays 3."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    env = {k: v for k, v in os.environ.items() if k != "UET_RUN_ID"}
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "uet_doit", "run", "missing.yaml"],
            cwd=project.root,
            stdout=write_end,
            stderr=write_end,
            env=env,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    assert proc.returncode == 3


@pytest.fixture
def ran(project: Project) -> Project:
    project.bundle(
        {
            "bundle_id": "piped",
            "workstreams": [
                {"ws_id": "ws", "steps": [shell_step(f"s{i}", f"echo {i}") for i in range(4)]}
            ],
        }
    )
    assert project.uet("run", "bundle.yaml").code == 0
    return project


@pytest.mark.parametrize(
    "argv",
    quick_first(
        [("list", "bundle.yaml"), ("status",), ("runs",), ("list", "bundle.yaml", "--json")]
    ),
)
def test_reading_commands_into_a_closed_pipe(ran: Project, argv: tuple[str, ...]) -> None:
    code, err = reader_gone_before_output(ran, *argv)
    assert code == 0
    assert "Traceback" not in err and "BrokenPipe" not in err


@pytest.mark.parametrize("mode", [("-P", "thread"), ("-P", "process"), ()])
@pytest.mark.slow
def test_run_goes_on_when_its_reader_leaves(project: Project, mode: tuple[str, ...]) -> None:
    steps = [shell_step(f"s{i}", f"sleep 0.1 && echo {i} > out{i}.txt") for i in range(5)]
    project.bundle({"bundle_id": "piped", "workstreams": [{"ws_id": "ws", "steps": steps}]})
    jobs = ("-n", "2", *mode) if mode else ()
    proc = uet_child(project, "run", "bundle.yaml", *jobs, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    first = proc.stdout.readline().decode()  # `| head -1`
    proc.stdout.close()
    proc.stdout = None
    err = finish(proc)
    assert proc.returncode == 0, err
    assert first.startswith("run piped-")
    assert "Traceback" not in err and "BrokenPipe" not in err
    assert all((project.root / f"out{i}.txt").exists() for i in range(5))
    status = json.loads(project.uet("status", "--json").out)
    assert status["status"] == "succeeded"
    assert {s["status"] for s in status["steps"]} == {"succeeded"}


@pytest.mark.parametrize("fmt", [(), ("--json",)])
@pytest.mark.slow
def test_watch_stops_when_its_reader_leaves(project: Project, fmt: tuple[str, ...]) -> None:
    """`uet status --watch | grep -m1 FAILED`: once grep is done, the watch ends, long before
    the run it watches (which goes on undisturbed)."""
    project.bundle(
        {"bundle_id": "long", "workstreams": [{"ws_id": "ws", "steps": [
            shell_step("slow", HOLD + " && echo done > slow.txt")]}]}
    )  # fmt: skip
    run = start_run(project.root, until="run long-")
    try:
        code, err = reader_gone_before_output(
            project, "status", "--watch", "--interval", "0.1", *fmt
        )
        assert not (project.root / "slow.txt").exists()  # it ended before the run's step did
        assert code == 0, err
        assert "Traceback" not in err and "BrokenPipe" not in err
    finally:
        (project.root / "go").touch()  # the step ends only now, however slow the watch was
        assert run.wait(timeout=60) == 0
    assert project.read("slow.txt") == "done\n"
