"""Alive but silent: a child that writes no output and changes no file for a while.

A tool stuck on a network call, a permission prompt on a closed stdin or a SIGSTOP holds
its slot until its timeout (often 15-60 minutes). `StallWatch` waits for the child in
short slices and, between them, looks for a sign of life: its stdout/stderr logs growing,
or a file under its working directory changing. None for `stall_timeout` seconds: stalled.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

#: folders whose changes are not the tool's work (state of git, uet, package managers)
_SKIPPED = frozenset({".git", ".uet", "node_modules", "__pycache__", ".venv", "venv"})
#: a tree larger than this is looked at in part (its first entries, in walk order)
MAX_ENTRIES = 50_000


def newest_change(root: Path, limit: int = MAX_ENTRIES) -> int:
    """The newest modification time (ns) of a file or folder under `root`."""
    newest, seen = 0, 0
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in _SKIPPED]
        for name in (*dirs, *files):
            if name.startswith(".doit.db"):
                continue  # doit saves every finished task there
            seen += 1
            try:
                newest = max(newest, os.lstat(os.path.join(folder, name)).st_mtime_ns)
            except OSError:
                continue
        if seen >= limit:
            break
    return newest


class StallWatch:
    """Waits for a child, noting when it last showed a sign of life."""

    def __init__(
        self,
        stall_timeout: float,
        logs: Iterable[Path],
        workdir: Path,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stall_timeout = stall_timeout
        self.logs = tuple(logs)
        self.workdir = workdir
        self.clock = clock
        self.stalled = False
        self.slice = min(5.0, max(0.1, stall_timeout / 4))
        self._seen = self._signs()
        self._alive_at = clock()

    def _signs(self) -> tuple[int, ...]:
        sizes = []
        for log in self.logs:
            try:
                sizes.append(log.stat().st_size)
            except OSError:
                sizes.append(-1)
        return (*sizes, newest_change(self.workdir))

    def wait(self, ended: Callable[[float], bool], timeout: float | None) -> bool:
        """True when the child ended; False on its timeout or a stall (then `stalled`)."""
        deadline = None if timeout is None else self.clock() + timeout
        while True:
            wait = self.slice if deadline is None else min(self.slice, deadline - self.clock())
            if ended(max(0.0, wait)):
                return True
            now = self.clock()
            if deadline is not None and now >= deadline:
                return False
            signs = self._signs()
            if signs != self._seen:
                self._seen, self._alive_at = signs, now
            elif now - self._alive_at >= self.stall_timeout:
                self.stalled = True
                return False
