"""What a Dask worker runs for uet: plain module-level functions, imported by reference.

Only an AttemptSpec's JSON arrives (with git bundles of the project under --no-shared-fs)
and only an AttemptResult's JSON leaves (with the change as a patch), so no closure, doit
task or pickled code of the coordinator ever crosses the wire. This module does not import
`distributed`: any machine with uet-doit installed can serve attempts.

Three worker-side guarantees live here:
- a tool dies with its worker: a watchdog process watches a pipe from the worker and,
  when the worker is gone (even `kill -9`), kills every process the worker's tools started
  (the process tokens of tools/process.py, which survive `setsid`). The runner's reaper
  (tools/reaper.py) would otherwise keep them running, as it should for a local runner;
- an attempt runs at most once: where the scheduler re-runs tasks of dead workers
  (allowed-failures > 0), a claim file beside its logs makes the second copy answer
  `worker_lost` instead of running the tool again;
- cancel is cooperative: `cancel_attempts` (sent with `client.run`) stops the tool of a
  running attempt and keeps a not yet started one from starting.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from uet_doit.errors import UetError
from uet_doit.run.executors.attempt import AttemptResult, AttemptSpec, run_attempt, worker_name
from uet_doit.run.executors.dask.remote_tree import GitError, RemoteAnswer, run_in_clone
from uet_doit.state.records import AttemptOutcome
from uet_doit.tools.failures import FailureClass
from uet_doit.tools.process import TOKEN_PREFIX, ToolProcesses
from uet_doit.tools.routing import availability, load_router_config
from uet_doit.tools.spawner import ReaperLost

#: seconds between SIGTERM and SIGKILL when an attempt is cancelled
CANCEL_GRACE_SECONDS = 3.0

# What this worker process holds. Not run state: a worker serves the attempts of any run
# and outlives them; these live as long as the worker does, and go with it.
_lock = threading.Lock()
_running: dict[str, int] = {}  # attempt key -> process group of its tool
_cancelled: set[str] = set()
_watchdog: list[subprocess.Popen[bytes]] = []  # at most one: this worker's watchdog
_tools = ToolProcesses("worker")  # the tools it runs, and its one reaper


def attempt_key(spec: AttemptSpec) -> str:
    """The Dask key of an attempt: unique per run, step and attempt number."""
    return f"uet-{spec.run_id}-{spec.step_id}-{spec.attempt}"


def run_attempt_json(text: str) -> str:
    """Run one attempt on this worker: AttemptSpec JSON in, AttemptResult JSON out."""
    return _run(AttemptSpec.from_json(text))


def run_claimed_attempt_json(text: str) -> str:
    """`run_attempt_json` for schedulers that re-run the tasks of lost workers: a claim file
    beside the attempt's logs keeps a second copy from running the tool again (a file per
    attempt costs a millisecond or two, so it is only used where it is needed)."""
    spec = AttemptSpec.from_json(text)
    claimed_by = _claim(spec)
    if claimed_by is not None:
        return _lost(
            f"this attempt had started on worker {claimed_by}, which was lost; "
            "it is not run a second time (uet retries the step as a new attempt)"
        ).to_json()
    return _run(spec)


def run_remote_attempt_json(
    text: str, project_id: str, base: str, base_bundle: bytes, bundle: bytes, commit: str
) -> str:
    """`run_attempt_json` without a shared filesystem: the attempt runs in this worker's
    clone of the project at `commit` (sent as git bundles); the answer is a RemoteAnswer
    (the result, the change as a patch, the logs)."""
    spec = AttemptSpec.from_json(text)

    def attempt(spec: AttemptSpec, started: Callable[[int], None]) -> str:
        try:
            answer = run_in_clone(spec, project_id, base, base_bundle, bundle, commit, started)
        except GitError as exc:
            failed = AttemptResult(
                success=False,
                outcome=AttemptOutcome.FAILED,
                failure_class=FailureClass.WORKSPACE_SETUP,
                message=f"the worker could not prepare the project's tree: {exc}",
                worker=worker_name(),
            )
            answer = RemoteAnswer(failed, b"", "", "")
        return answer.to_json()

    return _run(spec, attempt)


def _local(spec: AttemptSpec, started: Callable[[int], None]) -> str:
    return run_attempt(spec, None, started, _tools).to_json()


def _run(
    spec: AttemptSpec, attempt: Callable[[AttemptSpec, Callable[[int], None]], str] = _local
) -> str:
    key = attempt_key(spec)
    _ensure_watchdog()
    with _lock:
        if key in _cancelled:
            _cancelled.discard(key)
            return _cancelled_result().to_json()

    def started(pid: int) -> None:
        with _lock:
            _running[key] = pid
            stop = key in _cancelled
        if stop:
            _stop_group(pid)

    try:
        answer = attempt(spec, started)
    except ReaperLost as exc:  # the process this worker starts tools with died
        answer = _lost(f"{exc} on worker {worker_name()}; uet retries the step").to_json()
    finally:
        with _lock:
            _running.pop(key, None)
            was_cancelled = key in _cancelled
            _cancelled.discard(key)
    return _cancelled_result().to_json() if was_cancelled else answer


def cancel_attempts(keys: list[str]) -> list[str]:
    """Stop these attempts if they run here (called on every worker with `client.run`);
    returns the keys whose tool this worker stopped."""
    stopped = []
    with _lock:
        for key in keys:
            _cancelled.add(key)
            pid = _running.get(key)
            if pid is not None:
                stopped.append(key)
                _stop_group(pid)
        # forget cancels of attempts that never came here, so the set stays small
        if len(_cancelled) > 10_000:
            _cancelled.intersection_update(_running)
    return stopped


def describe_worker(config_root: str, tools: list[str], probe: str | None) -> dict[str, object]:
    """Who this worker is (host:pid), which of `tools` it can run (adapter loads, executable
    on its PATH), and whether it sees `probe`, a file the coordinator wrote in the project
    (the shared-filesystem check)."""
    found: dict[str, bool] = {}
    try:
        available = availability(load_router_config(Path(config_root)), Path(config_root))
        found = {tool: available(tool) for tool in tools}
    except (UetError, OSError):
        found = dict.fromkeys(tools, False)
    return {
        "name": worker_name(),
        "tools": found,
        "sees_project": probe is None or Path(probe).is_file(),
    }


def _claim(spec: AttemptSpec) -> str | None:
    """Mark the attempt as started here; the name of its earlier worker if it already was."""
    path = Path(spec.stdout_path).with_suffix(".claim")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        try:
            return path.read_text(encoding="utf-8").strip() or "unknown"
        except OSError:
            return "unknown"
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(worker_name())
    return None


def _lost(message: str) -> AttemptResult:
    return AttemptResult(
        success=False,
        outcome=AttemptOutcome.FAILED,
        failure_class=FailureClass.WORKER_LOST,
        message=message,
        worker=worker_name(),
    )


def _cancelled_result() -> AttemptResult:
    return AttemptResult(
        success=False,
        outcome=AttemptOutcome.INTERRUPTED,
        failure_class=FailureClass.INTERRUPTED,
        message="cancelled by the coordinator",
        worker=worker_name(),
    )


def _stop_group(pgid: int) -> None:
    """SIGTERM the tool's process group now, SIGKILL what is left after the grace time."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGTERM)

    def finish() -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)

    timer = threading.Timer(CANCEL_GRACE_SECONDS, finish)
    timer.daemon = True
    timer.start()


#: the watchdog: waits for EOF on stdin (the worker is gone), then kills the worker's tools
_WATCHDOG = (
    "import sys\n"
    "sys.stdin.buffer.read()\n"
    "from uet_doit.tools.process import kill_tokened\n"
    "kill_tokened(sys.argv[1], prefix=True)\n"
)


def _ensure_watchdog() -> None:
    """Start this worker's watchdog once. It holds the read end of a pipe whose write end only
    this process has: the kernel closes it when the worker dies, however it dies."""
    with _lock:
        if _watchdog and _watchdog[0].poll() is None:
            return
        _watchdog[:] = []
        _watchdog.append(
            subprocess.Popen(
                [sys.executable, "-c", _WATCHDOG, TOKEN_PREFIX],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # a Ctrl-C of the worker's terminal must not kill it first
            )
        )
