"""An attempt a killed runner left: its tool runs in its own session behind an exit-code
trap, so it outlives the runner. The next run waits for it (stopping it at the step's
timeout), reads its exit code and logs, and judges it as a live attempt's result is judged.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable
from pathlib import Path

from uet_doit.run.executors.attempt import AdapterResolver, AttemptSpec, adopt_attempt
from uet_doit.run.executors.base import Declined, DoneHandle, OnStart
from uet_doit.run.resilience import Clock
from uet_doit.state.records import AttemptRecord
from uet_doit.state.rows import pid_alive
from uet_doit.tools.reaper import read_note, start_time


class AdoptedExecutor:
    """Answers the attempt whose tool writes `exit_file`; starts no tool."""

    name = "adopted"
    starts_tools = False

    def __init__(
        self,
        exit_file: Path,
        pid: int | None,
        clock: Clock,
        timeout: float,
        resolve: AdapterResolver | None = None,
        on_wait: Callable[[int], None] | None = None,
    ) -> None:
        self.exit_file = exit_file
        self.pid = pid or noted_pid(exit_file)
        self.clock = clock
        self.timeout = timeout
        self.resolve = resolve
        self.on_wait = on_wait  # told once, when the tool is still running

    def submit(self, spec: AttemptSpec, on_start: OnStart | None = None) -> DoneHandle:
        pid, exit_file, clock = self.pid, self.exit_file, self.clock
        if pid and still_running(pid, exit_file):
            if self.on_wait is not None:
                self.on_wait(pid)
            deadline = clock.now() + self.timeout
            while still_running(pid, exit_file) and clock.now() < deadline:
                clock.sleep(0.05)
            if still_running(pid, exit_file):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
        try:
            code = int(exit_file.read_text().strip())
        except (FileNotFoundError, ValueError) as exc:
            raise Declined("the runner was killed while this attempt ran") from exc
        return DoneHandle(spec, adopt_attempt(spec, code, self.resolve))

    def close(self) -> None:
        """Nothing is held."""

    def stop(self) -> None:
        """The adopted tool is a killed runner's, not this run's: its wait ends at its
        deadline, and the run's own stop reaches what this run started."""


def attempt_pid(row: AttemptRecord) -> int | None:
    """A recorded attempt's tool pid: in its row, or (a local tool still running) in the
    note its reaper wrote beside its exit file."""
    if row.pid or not row.exit_file:
        return row.pid
    return noted_pid(Path(row.exit_file))


def noted_pid(exit_file: Path) -> int | None:
    """The tool's pid as its reaper noted it (`<stem>.pid`), when the runner died before
    recording it (a local tool's pid is recorded only with its attempt's end)."""
    found = _noted(exit_file)
    return found[0] if found else None


def _noted(exit_file: Path) -> tuple[int, str] | None:
    try:
        pid, _, started = read_note(exit_file.with_suffix(".pid")).strip().partition(" ")
        return int(pid), started
    except (OSError, ValueError):
        return None


def still_running(pid: int, exit_file: Path) -> bool:
    """Is the attempt's tool still running: no exit code yet, and `pid` alive with the start
    time its reaper noted (so a reused pid is not taken for it)?"""
    if exit_file.exists() or not pid_alive(pid):
        return False
    noted = _noted(exit_file)
    return noted is None or noted[0] != pid or not noted[1] or start_time(pid) == noted[1]
