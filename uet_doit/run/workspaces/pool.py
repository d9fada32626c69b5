"""Making an attempt's worktree, cheaply: a landed attempt's worktree is parked and the
next attempt of the run takes it over, so only the files that differ are written.

A fresh worktree writes every file of the repository (seconds for a few thousand files on
a busy disk); its administrative part (`git worktree add --no-checkout`) runs under a lock,
as git 2.39 misreads a worktree being added at the same time, and the checkout outside it.
Taking over a parked one is a rename (`git worktree move`), a checkout of what changed
since, and a `git clean -fdx` (nothing of the previous step, not even ignored files, is
left). Parked worktrees are recorded as such, so the run's closing sweep removes those no
attempt took over: none outlives the run.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

from uet_doit.run.workspaces.attempt_git import admin_dir, restore_link
from uet_doit.run.workspaces.git import Git
from uet_doit.run.workspaces.landing import landing_lock, lock_dir
from uet_doit.state.store import RunStore


class WorktreePool:
    def __init__(self, top: Git, state_dir: Path, store: RunStore) -> None:
        self.top = top
        self.state_dir = state_dir
        self.store = store
        self._parked: list[Path] = []
        self._lock = threading.Lock()
        self.locks = lock_dir(top)

    def git(self, path: Path) -> Git | None:
        """uet's git for a worktree: its administrative dir named, its `.git` file (which
        the tool could rewrite) put back first and never followed."""
        admin = admin_dir(self.top.common_dir(), path)
        if admin is None:
            return None
        restore_link(path, admin)
        return Git(path, self.top.identity, git_dir=admin)

    def open(self, path: Path, branch: str, tip: str) -> str | None:
        """A clean worktree at `path` on a new branch `branch` at `tip`; why not, else None."""
        with self._lock:
            parked = self._parked.pop() if self._parked else None
        if parked is not None and self._take_over(parked, path, branch, tip):
            return None
        with landing_lock(self.locks, "worktrees"):
            if path.exists():  # left by a record-less crash: start clean
                self.top.run("worktree", "remove", "--force", "--force", str(path), check=False)
                shutil.rmtree(path, ignore_errors=True)
            path.parent.mkdir(parents=True, exist_ok=True)
            added = self.top.run(
                "worktree",
                "add",
                "-q",
                "-f",
                "--no-checkout",
                "-B",
                branch,
                str(path),
                tip,
                check=False,
            )
        if added.code != 0:
            return added.failure(f"create the step's worktree {path}").line()
        # the checkout itself (every file written) outside the lock: in parallel
        wt = self.git(path)
        if wt is None:
            return f"git worktree add left no administrative dir for {path}"
        filled = wt.run("reset", "-q", "--hard", check=False)
        return None if filled.code == 0 else filled.failure("check out the step's files").line()

    def _take_over(self, parked: Path, path: Path, branch: str, tip: str) -> bool:
        restore_link(parked, admin_dir(self.top.common_dir(), parked))
        with landing_lock(self.locks, "worktrees"):
            path.parent.mkdir(parents=True, exist_ok=True)
            moved = self.top.run("worktree", "move", str(parked), str(path), check=False)
        if moved.code == 0:
            self.store.workspaces.remove(str(parked))
        else:
            self._discard(parked)
            return False
        wt = self.git(path)
        ready = wt is not None and (
            wt.run("checkout", "-q", "-f", "-B", branch, tip, check=False).code == 0
            and wt.run("clean", "-q", "-f", "-d", "-x", check=False).code == 0
        )
        if not ready:
            self._discard(path)
        return ready

    def park(self, path: Path, branch: str) -> None:
        """Keep the worktree of a landed attempt for the next one; its branch goes."""
        wt = self.git(path)
        if wt is None or wt.run("checkout", "-q", "--detach", check=False).code != 0:
            self._discard(path)
            self.top.run("branch", "-D", "-q", branch, check=False)
            return
        self.top.run("branch", "-D", "-q", branch, check=False)
        self.store.workspaces.mark_parked(str(path))
        with self._lock:
            self._parked.append(path)

    def _discard(self, path: Path) -> None:
        restore_link(path, admin_dir(self.top.common_dir(), path))
        with landing_lock(self.locks, "worktrees"):
            self.top.run("worktree", "remove", "--force", "--force", str(path), check=False)
            shutil.rmtree(path, ignore_errors=True)
        self.store.workspaces.remove(str(path))
