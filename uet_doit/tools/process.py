"""The one place a child process is started: own process group, closed stdin, timeout, logs.

Every tool, validation command and gate runs through `run_process`, so a timeout or Ctrl-C
kills the whole process tree (grandchildren included) and no tool ever waits on a prompt.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import select
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from uet_doit.tools.spawner import Spawner
from uet_doit.tools.stall import StallWatch

#: how long a process group gets between SIGTERM and SIGKILL
DEFAULT_GRACE_SECONDS = 3.0
#: how much of each stream is kept in memory for classification and messages
TAIL_BYTES = 64 * 1024


@dataclass(frozen=True)
class ProcessResult:
    """What a finished (or killed) child did."""

    argv: tuple[str, ...]
    exit_code: int | None  # None when it was killed for its timeout
    stdout: str  # the tail of stdout (all of it when short)
    stderr: str
    duration_s: float
    timed_out: bool = False
    stalled: bool = False  # stopped for `stall_timeout` without output or file change
    stall_timeout: float = 0.0

    @property
    def output(self) -> str:
        return f"{self.stdout}\n{self.stderr}"


#: every tool gets a token in its environment; what it starts keeps it, even after setsid
TOKEN_ENV = "UET_PROCESS_TOKEN"
#: the tokens of every tool this process starts begin with this (a fork keeps its parent's);
#: an immutable name, not state: `stop_every` finds with it what the runs' groups miss
TOKEN_PREFIX = f"{os.getpid()}-{uuid.uuid4().hex[:12]}-"


class ToolProcesses:
    """The tools one run has running in this process: their process groups, so a Ctrl-C seen
    by one thread stops the tools other threads wait on; the reaper that starts them
    (tools/spawner.py); and whether the run is stopping, after which no tool starts.

    A run's Runtime (run/doit/action.py) owns one and closes it when the run ends;
    `run_process` without one makes its own for that one tool."""

    def __init__(self, name: str | None = None) -> None:
        self.token_prefix = f"{TOKEN_PREFIX}{name or uuid.uuid4().hex[:8]}-"
        self.groups: set[int] = set()
        self.stopping = threading.Event()
        self._count = itertools.count(1)
        self._lock = threading.Lock()
        self._spawner: Spawner | None = None

    def token(self) -> str:
        return f"{self.token_prefix}{next(self._count)}"

    def spawner(self) -> Spawner:
        """This run's reaper, started on first use (again if it died)."""
        with self._lock:
            spawner = self._spawner
            if spawner is None or not spawner.alive():
                if spawner is not None:
                    spawner.close()
                spawner = self._spawner = Spawner()
        return spawner

    def stop(self, *, scan: bool = True) -> None:
        """No new tool starts; every running one is killed with what it started (`scan`:
        also what left its process group, found by token)."""
        self.stopping.set()
        with self._lock:
            spawner = self._spawner
        if spawner is not None and spawner.alive():
            spawner.stop()  # also what it was starting when we stopped
        for pgid in list(self.groups):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
        self.groups.clear()
        if scan:
            kill_tokened(self.token_prefix, prefix=True)

    def close(self) -> None:
        """The run is over: its reaper exits (its tools have ended) and its thread with it."""
        with self._lock:
            spawner, self._spawner = self._spawner, None
        if spawner is not None:
            spawner.close()


def stop_every(runs: Iterable[ToolProcesses]) -> None:
    """Ctrl-C or SIGTERM of this process: the tools of every run in it die, and what any tool
    of this process started, run or not (one scan of /proc for the process's tokens)."""
    for processes in runs:
        processes.stop(scan=False)
    kill_tokened(TOKEN_PREFIX, prefix=True)


def stop_attempts(pids: Iterable[int | None]) -> None:
    """Kill the process groups of tools another process (a doit worker) started."""
    for pid in pids:
        if pid:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)


def kill_tokened(token: str, *, prefix: bool = False) -> int:
    """SIGKILL every process whose environment carries `token` (or a token starting with it):
    the whole tree a tool started, including daemons that left its process group (setsid)."""
    needle = f"{TOKEN_ENV}={token}".encode() + (b"" if prefix else b"\0")
    me = os.getpid()
    killed = 0
    for entry in Path("/proc").glob("[0-9]*"):
        pid = int(entry.name)
        if pid == me:
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
                killed += 1
    return killed


def read_tail(path: Path) -> str:
    try:
        if not path.stat().st_size:
            return ""
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - TAIL_BYTES))
            return fh.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def _wait(proc: subprocess.Popen[bytes], timeout: float | None) -> None:
    """Wait without polling: Popen.wait(timeout) sleeps in 0.5-4 ms slices, which adds up
    to seconds over a thousand short steps; a pidfd is readable the moment the child ends."""
    try:
        fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # not Linux 5.3+
        proc.wait(timeout=timeout)
        return
    try:  # poll, not select: select fails on a descriptor numbered 1024 or more
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        ready = poller.poll(None if timeout is None else max(0, math.ceil(timeout * 1000)))
    finally:
        os.close(fd)
    if not ready:
        raise subprocess.TimeoutExpired(proc.args, timeout or 0)
    proc.wait()


def _ended(proc: subprocess.Popen[bytes], seconds: float) -> bool:
    try:
        _wait(proc, seconds)
    except subprocess.TimeoutExpired:
        return False
    return True


def kill_group(proc: subprocess.Popen[bytes], grace: float = DEFAULT_GRACE_SECONDS) -> None:
    """SIGTERM the child's process group, then SIGKILL whatever is left after `grace`."""
    try:
        pgid = os.getpgid(proc.pid)
    except ProcessLookupError:
        pgid = None
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        if pgid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, sig)
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
        # the leader is gone; make sure no member of its group lingers
        if pgid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
        return


def run_process(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    stdout_path: Path | None = None,
    stderr_path: Path | None = None,
    stdin_data: bytes | None = None,
    grace_seconds: float = DEFAULT_GRACE_SECONDS,
    exit_file: Path | None = None,
    on_start: Callable[[int], None] | None = None,
    stall_timeout: float | None = None,
    processes: ToolProcesses | None = None,
) -> ProcessResult:
    """Run `argv` (never through a shell unless argv says `sh -c`) and wait for it.

    Output goes to files, never to our own stdout: doit's thread mode swaps sys.stdout.
    Raises FileNotFoundError when the executable does not exist. The child runs in its own
    session. With `exit_file`, the runner's reaper starts it (tools/reaper.py): it survives
    a kill -9 of the runner and its exit code still lands in `exit_file`. A timeout, Ctrl-C
    or SIGTERM kills its whole process group and what it started outside the group.
    With `stall_timeout`, a child that writes nothing to stdout or stderr and changes no
    file under `cwd` for that long is stopped the same way, as `stalled`.
    `processes` are the tools of the run this one belongs to (its Runtime's).
    """
    own = processes is None
    tools = processes if processes is not None else ToolProcesses()
    if tools.stopping.is_set():
        raise KeyboardInterrupt  # the run is stopping: start nothing new
    token = tools.token()
    child_env = dict(env) if env is not None else dict(os.environ)
    child_env[TOKEN_ENV] = token
    import tempfile

    tmpdir: tempfile.TemporaryDirectory[str] | None = None
    if stdout_path is None or stderr_path is None:
        tmpdir = tempfile.TemporaryDirectory(prefix="uet-proc-")
        stdout_path = stdout_path or Path(tmpdir.name) / "stdout"
        stderr_path = stderr_path or Path(tmpdir.name) / "stderr"
    for folder in {stdout_path.parent, stderr_path.parent}:
        if not folder.is_dir():
            folder.mkdir(parents=True, exist_ok=True)
    launch = _Launch(
        argv, cwd, child_env, stdout_path, stderr_path, stdin_data, on_start, token, tools
    )
    start = time.monotonic()
    watch = StallWatch(stall_timeout, (stdout_path, stderr_path), cwd) if stall_timeout else None
    try:
        if exit_file is not None:
            code, timed_out = _run_reaped(launch, timeout, grace_seconds, exit_file, watch)
        else:
            code, timed_out = _run_direct(launch, timeout, grace_seconds, watch)
        if tools.stopping.is_set():
            raise KeyboardInterrupt  # killed by a stop: not a failure of the tool
        return ProcessResult(
            argv=tuple(argv),
            exit_code=None if timed_out else code,
            stdout=read_tail(stdout_path),
            stderr=read_tail(stderr_path),
            duration_s=time.monotonic() - start,
            timed_out=timed_out,  # a stall is stopped as a timeout is, and says so
            stalled=watch is not None and watch.stalled,
            stall_timeout=stall_timeout or 0.0,
        )
    finally:
        if own:
            tools.close()
        if tmpdir is not None:
            tmpdir.cleanup()


@dataclass(frozen=True)
class _Launch:
    """One child to start, whichever way it is started."""

    argv: Sequence[str]
    cwd: Path
    env: dict[str, str]
    stdout_path: Path
    stderr_path: Path
    stdin_data: bytes | None
    on_start: Callable[[int], None] | None
    token: str  # in the child's environment: finds what it starts outside its group
    tools: ToolProcesses  # the run's: where its process group is listed while it runs


def _kill_tree(pgid: int, token: str) -> None:
    """The child's process group, and what carries its token (setsid daemons included)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
    kill_tokened(token)


def _run_direct(
    launch: _Launch, timeout: float | None, grace: float, watch: StallWatch | None = None
) -> tuple[int | None, bool]:
    proc: subprocess.Popen[bytes] | None = None
    timed_out = False
    try:
        with launch.stdout_path.open("wb") as out, launch.stderr_path.open("wb") as err:
            proc = subprocess.Popen(
                list(launch.argv),
                cwd=launch.cwd,
                env=launch.env,
                stdin=subprocess.PIPE if launch.stdin_data is not None else subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
            launch.tools.groups.add(proc.pid)
            if launch.on_start is not None:
                launch.on_start(proc.pid)
            try:
                if launch.stdin_data is not None:
                    assert proc.stdin is not None
                    with contextlib.suppress(BrokenPipeError):
                        proc.stdin.write(launch.stdin_data)
                        proc.stdin.close()
                if watch is None:
                    _wait(proc, timeout)
                elif not watch.wait(lambda s: _ended(proc, s), timeout):
                    raise subprocess.TimeoutExpired(proc.args, timeout or 0)
            except subprocess.TimeoutExpired:
                timed_out = True
                kill_group(proc, grace)
                _kill_tree(proc.pid, launch.token)
            except BaseException:
                # Ctrl-C, SIGTERM turned into an exception, or a crash of ours: no orphans
                kill_group(proc, grace)
                _kill_tree(proc.pid, launch.token)
                raise
            else:
                # the leader exited; background grandchildren must not outlive the step
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
        return proc.returncode, timed_out
    finally:
        if proc is not None:
            launch.tools.groups.discard(proc.pid)


def _run_reaped(
    launch: _Launch,
    timeout: float | None,
    grace: float,
    exit_file: Path,
    watch: StallWatch | None = None,
) -> tuple[int | None, bool]:
    exit_file.unlink(missing_ok=True)
    child = launch.tools.spawner().spawn(
        launch.argv,
        cwd=launch.cwd,
        env=launch.env,
        stdout_path=launch.stdout_path,
        stderr_path=launch.stderr_path,
        exit_file=exit_file,
        stdin_data=launch.stdin_data,
    )
    launch.tools.groups.add(child.pid)
    try:
        if launch.tools.stopping.is_set():  # stopped while it was being started
            raise KeyboardInterrupt
        if launch.on_start is not None:
            launch.on_start(child.pid)
        if child.wait(timeout) if watch is None else watch.wait(child.wait, timeout):
            return child.code, False
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.pid, signal.SIGTERM)
        child.wait(grace)
        _kill_tree(child.pid, launch.token)
        child.wait(5.0)
        return None, True
    except BaseException:
        _kill_tree(child.pid, launch.token)
        raise
    finally:
        launch.tools.groups.discard(child.pid)
