"""`uet run --executor dask`: the same runs as locally, on a LocalCluster of 2 worker
processes on 127.0.0.1; uet keeps retries, budgets, slots and the record.

Most tests share one cluster (reached with --scheduler, its workers declare `aider=2`);
tests that need the fake AI tools on the workers' PATH let `uet run` start its own.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from uet_doit.testing import base_path, use_fake_tools

from support import (
    FAKE_TOOLS,
    Project,
    Result,
    attempt_rows,
    event_rows,
    flaky,
    one_ws,
    shell_step,
    wait_file,
    wait_gone,
)

#: a real Dask cluster: `pytest -m "not slow"` leaves this module out
pytestmark = pytest.mark.slow

pytest.importorskip("distributed")

FAST_RETRY = {"max_retries": 2, "initial_delay": 0, "max_delay": 0, "jitter": 0}


def local_cluster(allowed_failures: int) -> Any:
    """Two worker processes (with nannies, as `dask worker` runs them) that say they have
    aider, as a real cluster's workers would be started."""
    import dask
    from distributed import LocalCluster

    with dask.config.set({"distributed.scheduler.allowed-failures": allowed_failures}):
        return LocalCluster(
            n_workers=2,
            threads_per_worker=2,
            processes=True,
            host="127.0.0.1",
            scheduler_port=0,
            dashboard_address=None,
            scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
            resources={"aider": 2},
            silence_logs=40,
        )


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """The scheduler never re-runs a task of a dead worker (as uet's own clusters)."""
    local = local_cluster(0)
    yield local
    local.close()


@pytest.fixture(scope="module")
def rerunning_cluster() -> Iterator[Any]:
    """Dask's default: the scheduler re-runs a dead worker's tasks up to 3 times."""
    local = local_cluster(3)
    yield local
    local.close()


def dask_run(project: Project, cluster: Any, *args: str) -> Result:
    return project.uet(
        "run", "bundle.yaml", "--executor", "dask", "--scheduler", address(cluster), *args
    )


def worker_pids(cluster: Any) -> set[int]:
    from distributed import Client

    with Client(cluster, set_as_default=False) as client:
        return set(client.run(os.getpid).values())


def address(cluster: Any) -> str:
    return str(cluster.scheduler_address)


# -- the same behaviour as local runs ------------------------------------------------------


def pipeline() -> dict[str, Any]:
    """Each step appends its id to ran.log, so the log says exactly what ran."""
    steps = [
        shell_step(
            "upper",
            "echo upper >> ran.log; tr a-z A-Z < src/in.txt > out/upper.txt; sleep 0.3",
            files=["src/in.txt"],
            create_files=["out/upper.txt"],
        ),
        shell_step(
            "other",
            "echo other >> ran.log; echo x > out/other.txt; sleep 0.3",
            create_files=["out/other.txt"],
        ),
        shell_step(
            "count",
            "echo count >> ran.log; wc -c < out/upper.txt > out/count.txt",
            depends_on=["upper"],
            files=["out/upper.txt"],
            create_files=["out/count.txt"],
        ),
    ]
    return one_ws(*steps)


def test_incremental_runs_spread_over_both_workers_and_status_names_them(
    project: Project, cluster: Any
) -> None:
    project.write("src/in.txt", "hello\n")
    (project.root / "out").mkdir()
    project.bundle(pipeline())
    first = dask_run(project, cluster, "-n", "2")
    assert first.code == 0, first.out + first.err
    assert "dask: 2 worker(s)" in first.out
    assert sorted(project.lines("ran.log")) == ["count", "other", "upper"]
    assert project.read("out/count.txt").strip() == "6"
    steps = {s["step_id"]: s for s in project.status()["steps"]}
    seen = {int(str(s["worker"]).rsplit(":", 1)[1]) for s in steps.values()}
    assert seen == worker_pids(cluster), "steps should be seen on both workers"
    assert project.uet("report", "-o", "report.html").code == 0
    page = project.read("report.html")
    assert "<th>Worker</th>" in page or ">Worker<" in page
    assert all(f"<td>{s['worker']}</td>" in page for s in steps.values())
    # nothing changed: nothing runs; an edited input re-runs that step and its dependent
    (project.root / "ran.log").unlink()
    assert dask_run(project, cluster, "-n", "2").code == 0
    assert project.lines("ran.log") == []
    project.write("src/in.txt", "hello world\n")
    assert dask_run(project, cluster, "-n", "2").code == 0
    assert sorted(project.lines("ran.log")) == ["count", "upper"]
    assert project.read("out/count.txt").strip() == "12"


def test_retries_and_permanent_failures_are_decided_by_uet(project: Project, cluster: Any) -> None:
    project.bundle(
        one_ws(
            flaky("rl", 2, "Error: 429 Too Many Requests", retries=2),
            flaky("auth", 5, "401 Unauthorized: invalid API key", retries=2),
        )
    )
    result = dask_run(project, cluster, "-n", "2", "-c")
    assert result.code == 1, result.out
    steps = {s["step_id"]: s for s in project.status()["steps"]}
    assert (steps["rl"]["status"], steps["rl"]["attempts"]) == ("succeeded", 3)
    assert project.lines("rl.calls") == ["1", "2", "3"]
    assert (steps["auth"]["attempts"], steps["auth"]["failure_class"]) == (1, "permanent")
    assert project.lines("auth.calls") == ["1"]


def test_breaker_opens_across_the_cluster(project: Project, cluster: Any) -> None:
    breaker = {"failure_threshold": 2, "timeout_seconds": 60, "half_open_after": 60}
    steps = [
        flaky(f"b{i}", 9, "503 Service Unavailable", resilience={"max_retries": 0})
        for i in range(4)
    ]
    project.bundle(one_ws(*steps, circuit_breaker=breaker))
    result = dask_run(project, cluster, "-c")
    assert result.code == 1
    assert [i for i in range(4) if project.lines(f"b{i}.calls")] == [0, 1]
    assert "circuit open for shell until" in result.out


COST = """echo $UET_STEP_ID >> ran.log; echo '{"cost_usd": 0.02}' > $UET_RESULT_FILE"""


def test_budget_is_reserved_before_submit_so_workers_cannot_slip_through(
    project: Project, cluster: Any
) -> None:
    steps = [shell_step(f"p{i}", COST, estimated_cost_usd=0.02) for i in range(8)]
    project.bundle(
        {"bundle_id": "b", "workstreams": [{"ws_id": "WS-A", "max_cost_usd": 0.05, "steps": steps}]}
    )
    result = dask_run(project, cluster, "-n", "4", "-c")
    assert result.code == 4, result.out
    cost = json.loads(project.uet("cost", "--json").out)
    assert cost["run_cost_usd"] <= 0.05 + 1e-9
    assert len(project.lines("ran.log")) == 2


def test_budget_without_estimates_overshoots_at_most_the_attempts_in_flight(
    project: Project, cluster: Any
) -> None:
    steps = [shell_step(f"p{i}", COST, estimated_cost_usd=0) for i in range(8)]
    project.bundle(
        {"bundle_id": "b", "workstreams": [{"ws_id": "WS-A", "max_cost_usd": 0.05, "steps": steps}]}
    )
    dask_run(project, cluster, "-n", "4", "-c")
    cost = json.loads(project.uet("cost", "--json").out)
    assert 0.05 <= cost["run_cost_usd"] <= 0.05 + 4 * 0.02 + 1e-9


# -- where a tool can run --------------------------------------------------------------------


def test_a_tool_no_worker_has_fails_within_seconds_naming_tool_and_workers(
    project: Project, cluster: Any
) -> None:
    context = {"files": [], "create_files": ["out.md"], "instruction": "write it"}
    project.bundle(one_ws({"step_id": "c", "tool_profile_id": "claude", "context": context}))
    start = time.monotonic()
    result = dask_run(project, cluster)
    assert time.monotonic() - start < 30  # within seconds, on a loaded 2-core CI too
    assert result.code == 1
    [step] = project.status()["steps"]
    assert step["failure_class"] == "not_installed"
    message = str(step["last_error"])
    assert "no connected Dask worker has claude" in message
    for worker in cluster.scheduler_info["workers"]:
        assert worker in message
    assert "aider=2" in message and '--resources "claude=1"' in message


# -- faults ------------------------------------------------------------------------------------

#: a tool's UET_PROCESS_TOKEN starts with the pid of the process that ran it: the worker
VICTIM = (
    "echo victim >> ran.log; "
    "if [ -f first.pid ]; then echo done > victim.txt; "
    "else echo ${UET_PROCESS_TOKEN%%-*} > worker.pid; setsid sleep 60 & echo $! > daemon.pid; "
    "echo $$ > first.pid; sleep 60; fi"
)


@pytest.mark.parametrize("which", ["cluster", "rerunning_cluster"])
def test_a_worker_killed_mid_step_costs_one_worker_lost_attempt(
    project: Project, request: pytest.FixtureRequest, which: str
) -> None:
    cluster = request.getfixturevalue(which)
    others = [shell_step(f"o{i}", f"echo o{i} >> ran.log; sleep 0.2") for i in range(4)]
    project.bundle(
        one_ws(
            shell_step("victim", VICTIM, create_files=["victim.txt"], resilience=FAST_RETRY),
            *others,
        )
    )
    argv = [sys.executable, "-m", "uet_doit", "run", "bundle.yaml", "-n", "2", "--executor", "dask"]
    proc = subprocess.Popen(
        [*argv, "--scheduler", address(cluster)],
        cwd=project.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_file(project.root / "first.pid", a_line)
        wait_file(project.root / "worker.pid", a_line)
        wait_file(project.root / "daemon.pid", a_line)
        worker, tool = int(project.read("worker.pid")), int(project.read("first.pid"))
        daemon = int(project.read("daemon.pid"))  # left its process group with setsid
        os.kill(worker, signal.SIGKILL)  # the worker process, found by its pid
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert ("warning: the Dask scheduler re-runs tasks" in out) == (which != "cluster")
    assert project.read("victim.txt").strip() == "done"
    # the worker's watchdog stops the tool it left, and what the tool started
    assert wait_gone(tool), "the tool outlived its worker"
    assert wait_gone(daemon), "a process the tool started outlived the worker"
    rows = [r for r in attempt_rows(project) if r["step_id"] == "victim"]
    assert [(r["outcome"], r["failure_class"]) for r in rows] == [
        ("failed", "worker_lost"),
        ("succeeded", None),
    ]
    assert f":{worker}" in str(rows[0]["message"]), "the lost worker (host:pid) is named"
    [victim] = [s for s in project.status()["steps"] if s["step_id"] == "victim"]
    assert (victim["status"], victim["attempts"]) == ("succeeded", 2)
    ran = project.lines("ran.log")
    assert sorted(ran) == ["o0", "o1", "o2", "o3", "victim", "victim"], "a step ran twice"


def attempt_spec(project: Project, tool: str, command: str = "true") -> Any:
    from uet_doit.run.executors.attempt import AttemptSpec

    logs = project.root / ".uet" / "runs" / "r" / "steps"
    return AttemptSpec(
        run_id="r",
        bundle_id="d",
        ws_id="W",
        step_id="s",
        attempt=1,
        tool=tool,
        instruction="do it",
        files=(),
        create_files=(),
        project_root=project.root,
        config_root=project.root,
        env={},
        timeout=120,
        stdout_path=logs / "s.1.stdout",
        stderr_path=logs / "s.1.stderr",
        result_file=logs / "s.1.result.json",
        context={"command": command},
    )


def test_a_scheduler_gone_between_steps_stops_the_next_ones(project: Project) -> None:
    from uet_doit.run.executors.dask.cluster import Cluster
    from uet_doit.run.executors.dask.executor import DaskExecutor, SchedulerLost

    class GoneScheduler:
        status = "running"  # the client has not noticed yet

        def scheduler_info(self, n_workers: int) -> dict[str, Any]:
            raise OSError("Timed out trying to connect to tcp://10.0.0.5:8786")

        def close(self, timeout: float) -> None:
            """Nothing to close."""

    executor = DaskExecutor(Cluster(GoneScheduler(), None, "tcp://10.0.0.5:8786"), project.root)
    with pytest.raises(SchedulerLost) as caught:
        executor.submit(attempt_spec(project, "aider"))
    assert "lost the Dask scheduler at tcp://10.0.0.5:8786 (OSError: Timed out" in (
        caught.value.render()
    )
    with pytest.raises(SchedulerLost):  # no step starts after that, whatever its tool
        executor.submit(attempt_spec(project, "shell"))
    executor.close()


def test_a_claimed_attempt_never_runs_twice(project: Project) -> None:
    """What a scheduler that re-runs a lost worker's task gets: worker_lost, no second run."""
    from uet_doit.run.executors.attempt import AttemptResult
    from uet_doit.run.executors.dask.worker import run_claimed_attempt_json

    spec = attempt_spec(project, "shell", "echo ran >> ran.log")
    first = AttemptResult.from_json(run_claimed_attempt_json(spec.to_json()))
    second = AttemptResult.from_json(run_claimed_attempt_json(spec.to_json()))
    assert first.success and first.worker
    assert (second.success, second.failure_class) == (False, "worker_lost")
    assert f"had started on worker {first.worker}" in second.message
    assert project.lines("ran.log") == ["ran"]


# -- with the fake AI tools: uet run starts its own LocalCluster -------------------------------


@pytest.fixture
def fake_path(
    project: Project, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    fakes = use_fake_tools(tmp_path_factory.mktemp("fakes"), monkeypatch, home=False)
    project.write("notes.md", "some notes\n")
    return fakes.log


def test_max_parallel_one_holds_across_two_workers(
    project: Project, fake_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.write("router_config.json", json.dumps({"tools": {"claude": {"max_parallel": 1}}}))
    monkeypatch.setenv("FAKE_CLAUDE_MODE", "slow")
    monkeypatch.setenv("FAKE_SLEEP", "0.3")
    steps = [
        {
            "step_id": f"c{i}",
            "tool_profile_id": "claude",
            "context": {"files": ["notes.md"], "create_files": [f"c{i}.md"], "instruction": "go"},
        }
        for i in range(4)
    ]
    project.bundle(one_ws(*steps))
    result = project.uet("run", "bundle.yaml", "-n", "4", "--executor", "dask", "--workers", "2")
    assert result.code == 0, result.out + result.err
    calls = sorted(
        (json.loads(line) for line in fake_path.read_text().splitlines()), key=lambda c: c["start"]
    )
    assert len(calls) == 4
    for before, after in itertools.pairwise(calls):
        assert after["start"] >= before["end"], "two claude runs overlapped"
    assert all(s["worker"] for s in project.status()["steps"])


def start_uet(project: Project, *args: str) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "uet_doit", "run", "bundle.yaml", "--executor", "dask", *args]
    return subprocess.Popen(
        argv, cwd=project.root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def a_line(text: str) -> bool:
    return text.endswith("\n")


def json_text(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def test_ctrl_c_of_the_coordinator_stops_the_tools_on_the_workers(
    project: Project, cluster: Any
) -> None:
    """The workers outlive the coordinator (a real cluster): its tools are cancelled."""
    long = "echo $$ > {0}.pid; sleep 300; echo x > {0}.txt"
    project.bundle(one_ws(shell_step("l1", long.format("l1")), shell_step("l2", long.format("l2"))))
    proc = start_uet(project, "--scheduler", address(cluster), "-n", "2")
    try:
        wait_file(project.root / "l1.pid", a_line)
        wait_file(project.root / "l2.pid", a_line)
        tools = [int(project.read(f"{s}.pid")) for s in ("l1", "l2")]
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)  # the tools would sleep 300 s
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out
    assert "interrupted; resume with" in out and "Traceback" not in out
    assert all(wait_gone(pid) for pid in tools), "a tool outlived the Ctrl-C of its run"


SCHEDULER_ARGS = ("--host", "127.0.0.1", "--port", "0", "--no-dashboard")
WORKER_ARGS = ("--no-dashboard", "--dashboard-address", "127.0.0.1:0", "--no-nanny")


@pytest.fixture
def own_scheduler(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """`dask scheduler` and one `dask worker` as separate processes (so the test can kill the
    scheduler); call it again to start a fresh pair."""
    dask_cli = Path(sys.executable).parent / "dask"
    if not dask_cli.exists():
        pytest.skip("the dask command is not installed next to this Python")
    started: list[subprocess.Popen[bytes]] = []

    def start() -> tuple[str, subprocess.Popen[bytes]]:
        folder = tmp_path_factory.mktemp("scheduler")
        info = folder / "scheduler.json"
        env = {**os.environ, "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0"}
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "env": env}
        scheduler = subprocess.Popen(
            [str(dask_cli), "scheduler", *SCHEDULER_ARGS, "--scheduler-file", str(info)],
            **quiet,  # type: ignore[call-overload]
        )
        started.append(scheduler)
        wait_file(info, json_text)
        addr = str(json.loads(info.read_text())["address"])
        worker = subprocess.Popen(
            [str(dask_cli), "worker", addr, "--nthreads", "2", "--host", "127.0.0.1", *WORKER_ARGS],
            **quiet,  # type: ignore[call-overload]
        )
        started.append(worker)
        return addr, scheduler

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_killed_scheduler_stops_the_run_and_resume_reruns_only_the_unlanded(
    project: Project, own_scheduler: Any
) -> None:
    step = "echo {0} >> ran.log; sleep {1}; echo {0} > {0}.txt"
    project.bundle(
        one_ws(
            shell_step("a", step.format("a", 0), create_files=["a.txt"]),
            shell_step("b", "echo go > b.started; " + step.format("b", 3), depends_on=["a"]),
            shell_step("c", step.format("c", 0), create_files=["c.txt"], depends_on=["b"]),
        )
    )
    addr, scheduler = own_scheduler()
    proc = start_uet(project, "--scheduler", addr)
    try:
        wait_file(project.root / "b.started")
        scheduler.kill()
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 2, out
    assert f"lost the Dask scheduler at {addr}" in out
    assert "Traceback" not in out
    run_id = project.status()["run_id"]
    assert f"--resume {run_id}" in out
    (project.root / "ran.log").unlink()
    new_addr, _ = own_scheduler()
    resumed = project.uet(
        "run", "bundle.yaml", "--resume", run_id, "--executor", "dask", "--scheduler", new_addr
    )
    assert resumed.code == 0, resumed.out + resumed.err
    # `a` landed before the loss and never runs again; `c` never started and runs now. The
    # tool of `b` kept running on its worker: when it finished, its exit code is adopted
    # (as after a killed local runner), else `b` runs again.
    ran = project.lines("ran.log")
    assert ran in (["c"], ["b", "c"]), ran
    adopted = [e["step_id"] for e in event_rows(project, "adopted")]
    assert (ran == ["c"]) == (adopted == ["b"])
    assert project.read("b.txt").strip() == "b"
    assert [s["status"] for s in project.status()["steps"]] == [
        "up_to_date",
        "succeeded",
        "succeeded",
    ]


# -- usage ---------------------------------------------------------------------------------


def test_dask_options_without_the_dask_executor_are_a_usage_error(project: Project) -> None:
    project.bundle(one_ws(shell_step("a", "true")))
    result = project.uet("run", "bundle.yaml", "--executor", "local", "--workers", "3")
    assert result.code == 3 and "--workers: only with --executor dask" in result.out + result.err
    both = project.uet("run", "bundle.yaml", "--scheduler", "tcp://127.0.0.1:1", "--workers", "2")
    assert both.code == 3 and "--workers starts a local cluster" in both.out + both.err
    local = project.uet("run", "bundle.yaml", "--executor", "local", "--no-shared-fs")
    assert local.code == 3 and "--no-shared-fs: only with --executor dask" in local.out + local.err


def test_an_unreachable_scheduler_is_a_clear_error_and_records_no_run(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    from uet_doit.run.executors.dask import cluster as dask_cluster

    monkeypatch.setattr(dask_cluster, "CONNECT_TIMEOUT", 1.0)
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    project.bundle(one_ws(shell_step("a", "echo a >> ran.log")))
    result = project.uet("run", "bundle.yaml", "--scheduler", f"tcp://127.0.0.1:{port}")
    text = result.out + result.err
    assert result.code == 2, text
    assert f"could not reach the Dask scheduler at tcp://127.0.0.1:{port}" in text
    assert "dask scheduler" in text and "Traceback" not in text
    assert project.lines("ran.log") == []


def test_without_the_dask_extra_the_error_says_what_to_install(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    project.bundle(one_ws(shell_step("a", "true")))
    result = project.uet("run", "bundle.yaml", "--executor", "dask")
    assert result.code == 3
    assert "pip install 'uet-doit[dask]'" in result.out + result.err


def test_other_uet_versions_on_the_cluster_are_refused() -> None:
    from uet_doit.errors import StateError
    from uet_doit.run.executors.dask.cluster import check_versions

    class OldWorkers:
        def get_versions(self, check: bool, packages: list[str]) -> dict[str, Any]:
            mine = {"packages": {"uet_doit": "0.1.0"}}
            return {
                "client": mine,
                "scheduler": mine,
                "workers": {"tcp://10.0.0.7:4000": {"packages": {"uet_doit": "0.0.9"}}},
            }

    with pytest.raises(StateError) as caught:
        check_versions(OldWorkers(), "tcp://10.0.0.5:8786")
    assert "uet-doit 0.1.0 here, but tcp://10.0.0.7:4000: 0.0.9" in caught.value.render()


# -- listeners ---------------------------------------------------------------------------------


def descendants(pid: int) -> set[int]:
    """pid and every process below it, from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        current = todo.pop()
        found.add(current)
        todo.extend(children.get(current, []))
    return found


def listening_addresses(pids: set[int]) -> list[str]:
    """host:port (hex, as /proc/net/tcp shows them) of the TCP listeners these processes own."""
    inodes = set()
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").glob("*"):
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            cols = line.split()
            if cols[3] == "0A" and cols[9] in inodes:  # 0A: LISTEN
                found.append(cols[1])
    return found


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads /proc")
def test_the_cluster_uet_starts_listens_on_127_0_0_1_only(project: Project) -> None:
    hold = "i=0; until [ -e go ] || [ $i -ge 12000 ]; do sleep 0.05; i=$((i+1)); done"
    project.bundle(one_ws(shell_step("s", f"touch started; {hold}")))
    proc = start_uet(project, "--workers", "2")
    try:
        wait_file(project.root / "started")
        listeners = listening_addresses(descendants(proc.pid))  # while the step still runs
        (project.root / "go").touch()
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert len(listeners) >= 3, listeners  # scheduler, and each worker (and its nanny)
    loopback = "0100007F:"  # 127.0.0.1 as /proc/net/tcp writes it
    assert all(address.startswith(loopback) for address in listeners), listeners
    assert not any(address.endswith(":2253") for address in listeners)  # 8787: no dashboard


def test_auto_routes_by_the_tools_the_workers_have_not_the_coordinator(
    project: Project, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """aider lives only on the workers (declared and on their PATH); claude only here."""
    import dask
    from distributed import LocalCluster

    use_fake_tools(tmp_path_factory.mktemp("coordinator"), monkeypatch, "claude", home=False)
    routes = [{"task_kind": "docs", "tools": ["aider", "claude"]}]
    project.write("router_config.json", json.dumps({"routes": routes}))
    project.write("notes.md", "some notes\n")
    context = {"files": ["notes.md"], "create_files": ["docs.md"], "instruction": "write"}
    project.bundle(
        one_ws(
            {"step_id": "docs", "tool_profile_id": "auto", "task_kind": "docs", "context": context}
        )
    )
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        workers_with_aider = LocalCluster(
            n_workers=1,
            processes=True,
            host="127.0.0.1",
            scheduler_port=0,
            dashboard_address=None,
            scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
            resources={"aider": 1},
            env={"PATH": f"{FAKE_TOOLS}{os.pathsep}{base_path()}"},
            silence_logs=40,
        )
    try:
        result = dask_run(project, workers_with_aider)
    finally:
        workers_with_aider.close()
    assert result.code == 0, result.out + result.err
    [step] = project.status()["steps"]
    assert (step["tool"], step["status"]) == ("aider", "succeeded")
    assert "written by fake aider" in project.read("docs.md")


# -- without a shared filesystem -------------------------------------------------------------


def git_project(project: Project) -> None:
    def git(*args: str) -> None:
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
            cwd=project.root,
            check=True,
            capture_output=True,
        )

    git("init", "-q")
    project.write(".gitignore", "build/\n")
    project.write("src/in.txt", "hello\n")
    project.write("old.txt", "to be removed by a step\n")
    git("add", "-A")
    git("commit", "-q", "-m", "start")


def test_without_a_shared_filesystem_steps_land_as_locally(
    project: Project, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers run in their own clones (UET_DASK_CACHE, outside the project); each step sees
    what earlier steps wrote, even uncommitted, and its changes land in the project."""
    cache = tmp_path_factory.mktemp("worker-cache")
    monkeypatch.setenv("UET_DASK_CACHE", str(cache))
    git_project(project)
    project.write("src/local-only.txt", "not committed\n")
    (project.root / "gen").mkdir()  # empty: git does not carry it
    project.bundle(
        one_ws(
            shell_step(
                "upper",
                "pwd > where.txt; tr a-z A-Z < src/in.txt > upper.txt; cat src/local-only.txt; "
                "echo g > gen/g.txt",
                files=["src/in.txt"],
                create_files=["upper.txt", "gen/g.txt"],
            ),
            shell_step(
                "count",
                "wc -c < upper.txt > count.txt; mkdir -p build; echo b > build/out.bin; rm old.txt",
                depends_on=["upper"],
                files=["upper.txt"],
                create_files=["count.txt", "build/out.bin"],
            ),
        )
    )
    result = project.uet("run", "bundle.yaml", "--executor", "dask", "--no-shared-fs")
    assert result.code == 0, result.out + result.err
    assert project.read("upper.txt") == "HELLO\n" and project.read("gen/g.txt") == "g\n"
    assert project.read("count.txt").strip() == "6"
    assert project.read("build/out.bin") == "b\n"  # a declared output, though ignored by git
    assert not (project.root / "old.txt").exists()  # deletions land too
    where = Path(project.read("where.txt").strip())
    assert where.is_relative_to(cache) and not where.is_relative_to(project.root)
    logs = project.root / ".uet" / "runs" / project.status()["run_id"] / "steps"
    assert (logs / "upper.1.stdout").read_text() == "not committed\n"
    assert all(s["status"] == "succeeded" for s in project.status()["steps"])
    again = project.uet("run", "bundle.yaml", "--executor", "dask", "--no-shared-fs")
    assert again.code == 0 and "2 up to date" in again.out, again.out
    assert "dask: 2 worker(s)" in again.out


def test_no_shared_fs_needs_a_git_repository(project: Project) -> None:
    project.bundle(one_ws(shell_step("a", "true")))
    result = project.uet("run", "bundle.yaml", "--no-shared-fs")
    assert result.code == 3
    assert "not a git repository" in result.out + result.err
    assert "git init" in result.out + result.err


def test_without_a_shared_filesystem_a_change_that_no_longer_applies_is_retried_on_the_tip(
    project: Project, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UET_DASK_CACHE", str(tmp_path_factory.mktemp("worker-cache")))
    sync = tmp_path_factory.mktemp("sync")
    git_project(project)  # src/in.txt holds "hello"
    landed = project.root / "src" / "in.txt"  # the coordinator's copy, on this same machine
    project.bundle(
        one_ws(
            # a changes the file only once b runs (b's snapshot still has "hello") ...
            shell_step(
                "a",
                f"until [ -f {sync}/b.started ]; do sleep 0.05; done; echo from-a > src/in.txt",
            ),
            # ... and b finishes only after a's change has landed in the project
            shell_step(
                "b",
                f"touch {sync}/b.started; until grep -q from-a {landed}; do sleep 0.05; done; "
                "echo from-b > src/in.txt",
            ),
        )
    )
    result = project.uet("run", "bundle.yaml", "--no-shared-fs", "-n", "2", "-c")
    assert result.code == 0, result.out + result.err
    steps = {s["step_id"]: s for s in project.status()["steps"]}
    assert steps["a"]["status"] == "succeeded"
    # a merge conflict is retried at once on the new tip (as for isolated local steps)
    assert steps["b"]["status"] == "succeeded"
    assert steps["b"]["attempt_classes"] == ["merge_conflict", None]
    assert project.read("src/in.txt") == "from-b\n"


def test_without_a_shared_filesystem_isolated_steps_are_scope_checked_and_landed(
    project: Project, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An AI step's worker patch goes into its worktree, never the project: an out-of-scope
    change fails as scope_violation with nothing landed, an in-scope one lands as one
    commit with provenance; `.uet/` and `.doit.db` ignored by the project change nothing."""
    monkeypatch.setenv("UET_DASK_CACHE", str(tmp_path_factory.mktemp("worker-cache")))
    use_fake_tools(tmp_path_factory.mktemp("fakes"), monkeypatch, home=False)
    git_project(project)
    project.write(".gitignore", "build/\n.uet/\n.doit.db*\n")
    project.write("README.md", "readme\n")
    subprocess.run(["git", "add", "-A"], cwd=project.root, check=True)
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "ignore state"],
        cwd=project.root,
        check=True,
    )

    def ai_step(step_id: str, out: str, **env: str) -> dict[str, Any]:
        context = {"files": ["src/in.txt"], "create_files": [out], "instruction": "write"}
        return {"step_id": step_id, "tool_profile_id": "aider", "context": context, "env": env}

    project.bundle(
        one_ws(ai_step("good", "good.md"), ai_step("bad", "bad.md", FAKE_WRITE_ALSO="README.md"))
    )
    result = project.uet("run", "bundle.yaml", "--executor", "dask", "--no-shared-fs")
    assert result.code == 1, result.out + result.err
    steps = {s["step_id"]: s for s in project.status()["steps"]}
    assert steps["good"]["status"] == "succeeded"
    bad = (steps["bad"]["status"], steps["bad"]["failure_class"])
    assert bad == ("failed", "scope_violation")
    assert project.read("README.md") == "readme\n" and not (project.root / "bad.md").exists()
    log = subprocess.run(
        ["git", "log", "--format=%s%n%(trailers:key=Uet-Step,valueonly)", "-1"],
        cwd=project.root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert log == ["good", "good"]  # one commit, with provenance, and nothing else
    status = subprocess.run(
        ["git", "status", "--porcelain"],
        cwd=project.root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert status == "?? bundle.yaml\n"  # the bundle itself, never committed here
