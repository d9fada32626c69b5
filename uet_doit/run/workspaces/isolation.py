"""A run's isolation life cycle: checks before any step, clean-up after the last one.

Before: a landing a killed run left half done is finished; a detached HEAD, a rebase,
merge or cherry-pick in progress, a locked index or staged changes stop the run with what
to do; `.uet/` is kept out of `git status`; the landing branch goes into the RunContext.
After (and before): worktrees no longer needed are removed (their step landed, or their
folder is gone), as are branches and folders of ours that no record names.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import TextIO

from uet_doit.bundle.effective import explicit_isolation
from uet_doit.bundle.model import Bundle
from uet_doit.errors import UsageError
from uet_doit.run.context import RunContext
from uet_doit.run.step_spec import effective_isolation
from uet_doit.run.workspaces.git import Git, toplevel
from uet_doit.run.workspaces.landing import (
    checked_out_branch,
    landing_lock,
    lock_dir,
    recover_landing,
)
from uet_doit.run.workspaces.worktrees import DEFAULT_DIR, remove_worktree
from uet_doit.state.records import AttemptOutcome, EventKind, WorkspaceRecord, WorkspaceState
from uet_doit.state.store import RunStore


class IsolationError(UsageError):
    """The repository is in a state where steps cannot be isolated and landed safely."""


def wants_worktrees(bundle: Bundle) -> bool:
    return any(effective_isolation(bundle, ws, s) == "worktree" for ws, s in bundle.steps())


def start_isolation(
    bundle: Bundle, root: Path, ctx: RunContext, into: str | None, store: RunStore, out: TextIO
) -> RunContext:
    """The context with the landing branch set, or unchanged when no step is isolated."""
    if not wants_worktrees(bundle):
        if into:
            raise UsageError("--into needs steps with `isolation: worktree`", None)
        return ctx
    top_path = toplevel(root)
    if top_path is None:
        explicit = any(explicit_isolation(bundle, ws, s) == "worktree" for ws, s in bundle.steps())
        if explicit:
            raise IsolationError(
                f"isolation `worktree` needs a git repository, and {root} is not in one",
                "run `git init` (and commit) in the project, or set `isolation: none`",
            )
        return ctx  # AI steps run in place outside git
    top = Git(top_path)
    state = root / ".uet"
    note = recover_landing(top, state, lambda sha: _recorded_landing(store, sha))
    if note:
        out.write(f"isolation: {note}\n")
    branch = _check_repository(top, into)
    _ignore_state(top, root)
    sweep(top, store, root)
    return dataclasses.replace(ctx, landing_branch=branch, git_top=str(top_path))


def _recorded_landing(store: RunStore, sha: str) -> bool:
    """Whether a uet landing recorded `sha` in state.db before it wrote its journal."""
    return any(e.data.get("commit") == sha for e in store.events_of(EventKind.LANDING))


def _check_repository(top: Git, into: str | None) -> str:
    """The branch steps land on; a clear error for every state that makes landing unsafe."""
    git_dir = top.git_dir()
    where = f"in {top.cwd}"
    for marker, what, fix in (
        ("rebase-merge", "a rebase is in progress", "git rebase --continue (or --abort)"),
        ("rebase-apply", "a rebase or git am is in progress", "git rebase --continue (or --abort)"),
        ("MERGE_HEAD", "a merge is in progress", "git commit (or git merge --abort)"),
        ("CHERRY_PICK_HEAD", "a cherry-pick is in progress", "git cherry-pick --continue"),
        ("REVERT_HEAD", "a revert is in progress", "git revert --continue (or --abort)"),
    ):
        if (git_dir / marker).exists():
            raise IsolationError(f"{what} {where}; no step was started", f"finish it first: {fix}")
    if (git_dir / "index.lock").exists():
        raise IsolationError(
            f"the git index is locked ({git_dir / 'index.lock'} exists); no step was started",
            "another git command is running: wait for it; if none is, remove that file",
        )
    current = checked_out_branch(top)
    if into is None and current is None:
        raise IsolationError(
            f"HEAD is detached {where}: isolated steps land on a branch; no step was started",
            "check out a branch (git switch -c NAME), or name one with --into BRANCH",
        )
    branch = into or current
    assert branch is not None
    if top.rev("HEAD") is None:
        raise IsolationError(
            f"the repository {where} has no commit yet; worktrees start from one",
            'make a first commit (git add -A && git commit -m "start")',
        )
    if into is not None and top.rev(f"refs/heads/{into}") is None:
        raise IsolationError(f"--into {into}: no such branch {where}", f"git branch {into}")
    if into is not None and into != current:
        elsewhere = _checked_out_elsewhere(top, into)
        if elsewhere:
            raise IsolationError(
                f"--into {into}: that branch is checked out in {elsewhere}, whose files "
                "would not follow the commits landing on it",
                f"land on another branch, or run uet in {elsewhere}",
            )
    with landing_lock(lock_dir(top)):  # another project's landing moves the index too
        staged = not top.ok("diff", "--cached", "--quiet")
    if staged:
        raise IsolationError(
            f"the git index has staged changes {where}; steps land commits on {branch} and "
            "would mix them in; no step was started",
            "commit them, or unstage them (git restore --staged .)",
        )
    return branch


def _checked_out_elsewhere(top: Git, branch: str) -> str | None:
    text = top.run("worktree", "list", "--porcelain", check=False).out
    for block in text.split("\n\n"):
        lines = block.splitlines()
        if f"branch refs/heads/{branch}" in lines and lines:
            return lines[0].removeprefix("worktree ")
    return None


def _ignore_state(top: Git, root: Path) -> None:
    """`.uet/` (worktrees, logs, state) and doit's state file out of `git status`."""
    probe = top.run("check-ignore", "-q", str(root / ".uet" / "x"), check=False)
    if probe.code == 0:
        return
    exclude = top.common_dir() / "info" / "exclude"
    exclude.parent.mkdir(parents=True, exist_ok=True)
    prefix = str(root.resolve().relative_to(top.cwd)).replace("\\", "/")
    base = "" if prefix == "." else f"/{prefix}"
    with exclude.open("a", encoding="utf-8") as fh:
        fh.write(f"\n# uet-doit local state\n{base}/.uet/\n{base}/.doit.db*\n")


def sweep(top: Git, store: RunStore, root: Path) -> list[str]:
    """Remove worktrees no longer needed: their step landed since, their folder is gone, or
    no attempt was ever recorded for them. Failed ones are kept for inspection, unfinished
    ones for the next run (a tool a killed runner left may finish and land from there)."""
    removed: list[str] = []
    top.run("worktree", "prune", check=False)
    for record in store.workspaces.all():
        latest = store.latest_attempt(record.bundle_id, record.step_id)
        landed = (
            latest is not None
            and latest.outcome in (AttemptOutcome.SUCCEEDED, AttemptOutcome.CACHED)
            and latest.started >= record.created - 1.0
        )
        parked = record.status == WorkspaceState.PARKED  # no attempt of this run wants it now
        gone = not Path(record.path).exists()
        if parked or landed or gone or not _has_attempt(store, record):
            remove_worktree(top, store, record)
            removed.append(record.path)
    _drop_unrecorded(top, store, root)
    return removed


def _has_attempt(store: RunStore, record: WorkspaceRecord) -> bool:
    """A runner killed between making a worktree and recording its attempt leaves none."""
    rows = store.attempts(record.run_id, record.step_id)
    return any(row.attempt == record.attempt for row in rows)


def _drop_unrecorded(top: Git, store: RunStore, root: Path) -> None:
    """Branches `uet/...` and worktree folders of ours that no record names (a runner
    killed between making one and recording it)."""
    known = store.workspaces.all()
    branches = {r.branch for r in known}
    listed = top.run("for-each-ref", "--format=%(refname:short)", "refs/heads/uet/", check=False)
    in_use = _worktree_branches(top)
    for name in listed.out.split():
        if name not in branches and name not in in_use:
            top.run("branch", "-D", "-q", name, check=False)
    folder = root / DEFAULT_DIR
    paths = {Path(r.path) for r in known}
    if folder.is_dir():
        for run_dir in folder.iterdir():
            for path in run_dir.iterdir() if run_dir.is_dir() else ():
                if path not in paths:
                    top.run("worktree", "remove", "--force", "--force", str(path), check=False)
                    shutil.rmtree(path, ignore_errors=True)
            if run_dir.is_dir() and not any(run_dir.iterdir()):
                run_dir.rmdir()
        top.run("worktree", "prune", check=False)
        for name in _worktree_branches(top) - branches:
            if name.startswith("uet/") and name in listed.out.split():
                top.run("branch", "-D", "-q", name, check=False)


def _worktree_branches(top: Git) -> set[str]:
    text = top.run("worktree", "list", "--porcelain", check=False).out
    return {
        line.removeprefix("branch refs/heads/")
        for line in text.splitlines()
        if line.startswith("branch refs/heads/")
    }


def end_isolation(ctx: RunContext, store: RunStore) -> None:
    """After the run: what landed leaves nothing behind."""
    if ctx.landing_branch and ctx.git_top:
        sweep(Git(Path(ctx.git_top)), store, ctx.root_path)
