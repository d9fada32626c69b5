"""The one place a child process is started: own process group, closed stdin, timeout, logs.

Every tool, validation command and gate runs through `run_process`, so a timeout or Ctrl-C
kills the whole process tree (grandchildren included) and no tool ever waits on a prompt.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

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

    @property
    def output(self) -> str:
        return f"{self.stdout}\n{self.stderr}"


def _load_prctl() -> object | None:
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl
    except (OSError, AttributeError):  # not Linux
        return None


_PRCTL = _load_prctl()
_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent_pid: int) -> None:
    """In the child before exec: be SIGKILLed when the process that started us dies.

    A runner killed with kill -9 must not leave a tool finishing work nobody will record.
    """
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL)  # type: ignore[operator]
        if os.getppid() != parent_pid:
            os._exit(137)


def _tail(path: Path) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - TAIL_BYTES))
            return fh.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""


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
) -> ProcessResult:
    """Run `argv` (never through a shell unless argv says `sh -c`) and wait for it.

    Output goes to files, never to our own stdout: doit's thread mode swaps sys.stdout.
    Raises FileNotFoundError when the executable does not exist.
    """
    import tempfile

    tmpdir: tempfile.TemporaryDirectory[str] | None = None
    if stdout_path is None or stderr_path is None:
        tmpdir = tempfile.TemporaryDirectory(prefix="uet-proc-")
        stdout_path = stdout_path or Path(tmpdir.name) / "stdout"
        stderr_path = stderr_path or Path(tmpdir.name) / "stderr"
    stdout_path.parent.mkdir(parents=True, exist_ok=True)
    stderr_path.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    timed_out = False
    try:
        with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
            proc = subprocess.Popen(
                list(argv),
                cwd=cwd,
                env=dict(env) if env is not None else None,
                stdin=subprocess.PIPE if stdin_data is not None else subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
                preexec_fn=functools.partial(_die_with_parent, os.getpid()),
            )
            try:
                if stdin_data is not None:
                    assert proc.stdin is not None
                    try:
                        proc.stdin.write(stdin_data)
                        proc.stdin.close()
                    except BrokenPipeError:
                        pass
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                kill_group(proc, grace_seconds)
            except BaseException:
                # Ctrl-C, SIGTERM turned into an exception, or a crash of ours: no orphans
                kill_group(proc, grace_seconds)
                raise
            else:
                # the leader exited; background grandchildren must not outlive the step
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
        return ProcessResult(
            argv=tuple(argv),
            exit_code=None if timed_out else proc.returncode,
            stdout=_tail(stdout_path),
            stderr=_tail(stderr_path),
            duration_s=time.monotonic() - start,
            timed_out=timed_out,
        )
    finally:
        if tmpdir is not None:
            tmpdir.cleanup()
