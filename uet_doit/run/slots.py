"""Per-tool concurrency limits that hold across processes, threads and concurrent runs.

Slot i of a tool is the file `<state_dir>/slots/<tool>.<i>.lock`, held with an exclusive
`flock`. The kernel releases a flock when its holder dies, so a killed step never leaves a
slot taken. flock locks belong to an open file, so two threads of one process exclude each
other too. Waiting polls with short sleeps: Ctrl-C and cancellation are honoured promptly.
"""

from __future__ import annotations

import fcntl
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

DEFAULT_POLL_SECONDS = 0.1


class SlotWaitCancelled(Exception):
    """Raised by `acquire` when its `cancelled` callback says to stop waiting."""


def _file_name(tool: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", tool) or "_"


class ToolSlots:
    """`with slots.acquire("aider", 2):` runs at most 2 aider steps at a time, machine-wide."""

    def __init__(
        self,
        state_dir: Path,
        *,
        sleep: Callable[[float], None] = time.sleep,
        poll_seconds: float = DEFAULT_POLL_SECONDS,
    ) -> None:
        self.directory = state_dir / "slots"
        self._sleep = sleep
        self._poll = poll_seconds

    def _try_slots(self, tool: str, max_parallel: int) -> int | None:
        """Open and lock the first free slot file; its descriptor, or None if all are taken."""
        self.directory.mkdir(parents=True, exist_ok=True)
        for index in range(max_parallel):
            path = self.directory / f"{_file_name(tool)}.{index}.lock"
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            except BaseException:
                os.close(fd)
                raise
            # who holds it, for people looking at a stuck run
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()} {tool}\n".encode())
            return fd
        return None

    @contextmanager
    def acquire(
        self,
        tool: str,
        max_parallel: int,
        on_wait: Callable[[], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> Iterator[None]:
        """Block until one of `max_parallel` slots of `tool` is free; hold it in the block.

        `on_wait` is called once, when the first try finds every slot taken; `cancelled` is
        polled while waiting and ends the wait with SlotWaitCancelled.
        """
        if max_parallel < 1:
            msg = f"max_parallel for {tool!r} must be at least 1, not {max_parallel}"
            raise ValueError(msg)
        fd = self._try_slots(tool, max_parallel)
        if fd is None and on_wait is not None:
            on_wait()
        while fd is None:
            if cancelled is not None and cancelled():
                msg = f"stopped waiting for a {tool} slot"
                raise SlotWaitCancelled(msg)
            self._sleep(self._poll)
            fd = self._try_slots(tool, max_parallel)
        try:
            yield
        finally:
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)
