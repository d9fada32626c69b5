"""Landing an isolated attempt: its change becomes one commit on the run's branch.

One landing at a time (a lock file: threads of this process and other processes alike).
The commit is built from objects only (`merge-tree --write-tree`, `commit-tree`), so a
conflict changes nothing. The main working tree is then moved from the old tip to the
new one as `git checkout` would (`read-tree -m -u`): uncommitted edits elsewhere are kept,
and an edit of a path the step changed stops the landing instead of being overwritten.

A journal (.uet/landing.json) is written before the working tree moves and removed once
the branch points at the new commit, so a kill -9 in between is finished by the next run
(`recover_landing`): the step is then landed, and the resumed run records it, or neither.
The new commit is recorded in state.db (the `witness`) before the journal is written, and
a journal naming a commit uet did not record is refused: a tool that wrote one cannot get
its commit checked out.

The branch moves only by compare-and-swap from a value uet saw (`BranchGuard`): the tip
the run started from, or a commit a uet landing put there (a ledger in the git dir, shared
by every project and run of the repository, as is the landing lock).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import subprocess
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, overload

from uet_doit.errors import StateError
from uet_doit.run.workspaces.git import Git, git_env, name_status, trailers
from uet_doit.state.doit_backend import follow_moves

JOURNAL = "landing.json"
_PATHS_PER_CALL = 500


@dataclass(frozen=True)
class Landed:
    """What a landing did: the new tip, or why nothing landed."""

    commit: str | None = None
    conflict: tuple[str, ...] = ()  # paths of a 3-way merge that conflicts
    edited: tuple[str, ...] = ()  # paths the user edits that the step changed
    message: str = ""
    moved: str = ""  # the branch moved by something other than uet: what moved it

    @property
    def ok(self) -> bool:
        return self.commit is not None


@contextmanager
def landing_lock(state_dir: Path, name: str = "landing") -> Iterator[None]:
    """Serialises landings of parallel steps (threads of this process and other ones);
    `name` "worktrees" serialises `git worktree add/remove`, which read each other's
    half-written administrative files when run at once.

    A flock belongs to one opening of the file, so it shuts out the other threads of this
    process (every run in it) as it does other processes: no table of thread locks. The
    lockf under it is for older uet processes, which took only that."""
    state_dir.mkdir(parents=True, exist_ok=True)
    with (state_dir / f"{name}.lock").open("a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fcntl.lockf(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.lockf(fh, fcntl.LOCK_UN)  # the flock goes when the file closes


def lock_dir(top: Git) -> Path:
    """Where landings of every uet project and run of one repository meet: the git dir."""
    return top.common_dir() / "uet"


class BranchGuard:
    """The tip uet last saw of the landing branch, and the commits uet landed on it."""

    def __init__(self, top: Git, branch: str) -> None:
        self.top = top
        self.branch = branch
        self.ledger = lock_dir(top) / "landed"
        self.seen = top.rev(f"refs/heads/{branch}")

    def foreign(self, tip: str) -> str | None:
        """What moved the branch to `tip`, when neither this run nor a uet landing did."""
        if tip == self.seen:
            return None
        try:
            landed = set(self.ledger.read_text(encoding="utf-8").split())
        except FileNotFoundError:
            landed = set()
        if tip in landed:
            return None
        what = self.top.run("log", "-1", "--format=%h %s (%an)", tip, check=False).out.strip()
        return (
            f"{self.branch} was moved to {what or tip[:12]} since uet last saw it at "
            f"{(self.seen or '?')[:12]}, not by a uet landing"
        )

    def moved(self, new: str) -> None:
        self.seen = new
        self.ledger.parent.mkdir(parents=True, exist_ok=True)
        with self.ledger.open("a", encoding="utf-8") as fh:
            fh.write(new + "\n")


def _user_edit_in_the_way(said: str) -> bool:
    """git read-tree refused to overwrite a file with changes of its own (not a lock or an
    I/O error: those are said as they are, not as an edit of the user's)."""
    return "not uptodate" in said or "would be overwritten" in said


def checked_out_branch(repo: Git) -> str | None:
    result = repo.run("symbolic-ref", "-q", "--short", "HEAD", check=False)
    return result.out.strip() if result.code == 0 else None


def find_landed(repo: Git, base: str, tip: str, keys: dict[str, str]) -> str | None:
    """The commit between base and tip whose trailers carry `keys` (a landing already done,
    e.g. by a runner killed before it recorded the step)."""
    if base == tip:
        return None
    text = repo.run("log", "-z", "--format=%H%n%B", f"{base}..{tip}").out
    for entry in text.split("\0"):
        sha, _, body = entry.strip("\n").partition("\n")
        if sha and all(trailers(body).get(k) == v for k, v in keys.items()):
            return sha
    return None


def land(
    top: Git,
    state_dir: Path,
    branch: str,
    base: str,
    step_commit: str,
    keys: dict[str, str],
    root: Path | None = None,
    guard: BranchGuard | None = None,
    witness: Callable[[str], None] | None = None,
) -> Landed:
    """Put `step_commit` (one commit on `base`) on top of `branch`; see the module doc."""
    with landing_lock(lock_dir(top)):
        tip = top.rev(f"refs/heads/{branch}")
        if tip is None:
            return Landed(message=f"the branch {branch} no longer exists")
        if guard is not None and (foreign := guard.foreign(tip)):
            return Landed(moved=foreign)
        done = find_landed(top, base, tip, keys)
        if done is not None:
            return Landed(done)
        changed = [path for _, path in name_status(top, base, step_commit)]
        in_tree = checked_out_branch(top) == branch
        if in_tree:
            edited, deleted = user_edits(top, changed, split_deleted=True)
            if edited:
                return Landed(edited=tuple(edited))
            if deleted:  # the user deleted files the step remakes: nothing of theirs is lost
                doing = f"restore files the step remakes in {top.cwd}"
                top.run("checkout-index", "-f", "-u", "--", *deleted, doing=doing)
        if tip == base:
            new = step_commit
        else:
            merged = top.run(
                "merge-tree",
                "--write-tree",
                "--name-only",
                "--no-messages",
                tip,
                step_commit,
                check=False,
            )
            lines = merged.out.splitlines()
            if merged.code == 1:
                return Landed(conflict=tuple(dict.fromkeys(ln for ln in lines[1:] if ln)))
            if merged.code != 0:
                return Landed(
                    message=merged.failure(f"land the step on {branch} (merging it)").line()
                )
            message = top.out("log", "-1", "--format=%B", step_commit)
            doing = f"make the landing commit on {branch}"
            new = top.run("commit-tree", lines[0], "-p", tip, stdin=message, doing=doing).out
            new = new.strip()
        journal = state_dir / JOURNAL
        if witness is not None:
            witness(new)
        write_journal(journal, branch, tip, new, in_tree)
        if in_tree:
            moved = top.run("read-tree", "-m", "-u", tip, new, check=False)
            if moved.code != 0:
                journal.unlink(missing_ok=True)
                failure = moved.failure(
                    f"land the step on {branch} (updating its files in {top.cwd})"
                )
                if _user_edit_in_the_way(moved.err):  # edited since user_edits looked
                    return Landed(edited=tuple(changed), message=failure.line())
                return Landed(message=failure.line())
        swapped = top.run("update-ref", f"refs/heads/{branch}", new, tip, check=False)
        if swapped.code != 0:  # moved between our read and the swap: nothing of ours moved it
            journal.unlink(missing_ok=True)
            return Landed(moved=f"{branch} moved while uet was landing on it")
        if guard is not None:
            guard.moved(new)
        journal.unlink(missing_ok=True)
        if in_tree and root is not None:
            follow_in_doit(top, root, tip, new)
        return Landed(new)


def follow_in_doit(top: Git, root: Path, old: str, new: str) -> int:
    """Files edited in place between two commits: doit's saved state of them moves along
    for every task that had the old content (see DurableSqliteDB.follow_moves)."""
    prefix = os.path.relpath(root, top.cwd)
    prefix = "" if prefix == "." else prefix.replace(os.sep, "/") + "/"
    moves = {}
    for status, path in name_status(top, old, new):
        if status != "M" or not path.startswith(prefix):
            continue
        before = blob_md5(top, f"{old}:{path}")
        local = root / path[len(prefix) :]
        try:
            stat = local.stat()
            with local.open("rb") as fh:  # in chunks: an output may be gigabytes
                content = hashlib.file_digest(fh, _md5).hexdigest()
        except OSError:
            continue
        if before is None:
            continue
        moves[path[len(prefix) :]] = (before, (stat.st_mtime, stat.st_size, content))
    return follow_moves(root / ".doit.db", moves)


def _md5() -> Any:
    return hashlib.md5(usedforsecurity=False)


def blob_md5(top: Git, rev_path: str) -> str | None:
    """md5 of the bytes of `REV:PATH` as git streams them (never whole in memory), or None
    when there is no such file."""
    argv = top.argv("cat-file", "blob", rev_path)
    with subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=git_env()
    ) as proc:
        digest = _md5()
        while chunk := proc.stdout.read(1 << 20) if proc.stdout else b"":
            digest.update(chunk)
    return digest.hexdigest() if proc.returncode == 0 else None


@overload
def user_edits(top: Git, paths: Sequence[str]) -> list[str]: ...
@overload
def user_edits(
    top: Git, paths: Sequence[str], split_deleted: Literal[True]
) -> tuple[list[str], list[str]]: ...
def user_edits(
    top: Git, paths: Sequence[str], split_deleted: bool = False
) -> list[str] | tuple[list[str], list[str]]:
    """Paths among `paths` with uncommitted changes (or untracked files) in the work tree;
    with `split_deleted`, those only deleted from the work tree apart."""
    found: list[str] = []
    deleted: list[str] = []
    for start in range(0, len(paths), _PATHS_PER_CALL):  # argv stays short for huge changes
        fields = top.z_paths(
            "--literal-pathspecs",
            "status",
            "--porcelain=v1",
            "-z",
            "--untracked-files=all",
            "--no-renames",
            "--",
            *paths[start : start + _PATHS_PER_CALL],
        )
        for entry in fields:
            if len(entry) <= 3:
                continue
            if split_deleted and entry[:2] == " D":
                deleted.append(entry[3:])
            else:
                found.append(entry[3:])
    return (found, deleted) if split_deleted else found


def write_journal(path: Path, branch: str, old: str, new: str, in_tree: bool) -> None:
    data = {"branch": branch, "old": old, "new": new, "in_tree": in_tree}
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        json.dump(data, fh)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)


_SHA = re.compile(r"\A[0-9a-f]{40}([0-9a-f]{24})?\Z")


def read_journal(journal: Path) -> dict[str, object] | None:
    """The journal's fields when it is one (branch, old, new, in_tree), else None."""
    try:
        data = json.loads(journal.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and _not_a_journal(data) is None else None


def _not_a_journal(data: object) -> str | None:
    """Where a JSON value fails to be a journal (a JSON path and what is wrong), or None."""
    if not isinstance(data, dict):
        return f"$ is {type(data).__name__ if data is not None else 'null'}, not an object"
    if not isinstance(data.get("branch"), str) or not data["branch"]:
        return "$.branch is missing or not text"
    for name in ("old", "new"):
        value = data.get(name)
        if not (isinstance(value, str) and _SHA.match(value)):
            return f"$.{name} is not a commit id"
    if not isinstance(data.get("in_tree", False), bool):
        return "$.in_tree is not true or false"
    return None


def refuse_journal(journal: Path, why: str) -> str:
    """Keep a journal uet will not act on beside it, for `uet doctor` and the user."""
    kept = journal.with_name(journal.name + ".refused")
    journal.replace(kept)
    return f"refused {journal}: {why}; nothing was checked out (kept as {kept.name})"


def recover_landing(
    top: Git, state_dir: Path, recorded: Callable[[str], bool] | None = None
) -> str | None:
    """Finish a landing a killed runner left half done; say what was done (or None).
    `recorded(sha)` says whether uet recorded that commit before writing the journal."""
    journal = state_dir / JOURNAL
    if not journal.exists():
        return None
    data = read_journal(journal)
    if data is None:
        try:
            json.loads(journal.read_text(encoding="utf-8"))
        except ValueError:
            journal.unlink(missing_ok=True)  # torn before the rename: nothing had moved yet
            return None
        except OSError as exc:
            raise StateError(
                f"{journal} cannot be read ({exc.strerror})", "check its mode"
            ) from None
        wrong = _not_a_journal(json.loads(journal.read_text(encoding="utf-8")))
        raise StateError(
            f"{journal} is not a landing journal ({wrong}); no step was started",
            "uet writes it only while landing a step; if no run was killed mid-landing, "
            f"remove it (rm {journal}), else restore the file it was",
        )
    branch, old, new = str(data["branch"]), str(data["old"]), str(data["new"])
    if recorded is not None and not recorded(new):
        return refuse_journal(journal, f"it names commit {new[:12]}, which no uet landing recorded")
    tip = top.rev(f"refs/heads/{branch}")
    if tip not in (old, new):
        journal.unlink(missing_ok=True)
        return f"a landing on {branch} was interrupted and the branch has moved since; left as is"
    if data.get("in_tree") and checked_out_branch(top) == branch:
        # the runner was killed inside read-tree: its index.lock is ours, the paths the
        # landing changes had no user edits (checked before), so they are set to `new`
        with contextlib.suppress(FileNotFoundError):
            (top.git_dir() / "index.lock").unlink()
        changes = name_status(top, old, new)
        kept = [path for status, path in changes if status != "D"]
        gone = [path for status, path in changes if status == "D"]
        nul = "--pathspec-file-nul"
        if kept:
            listed = "\0".join(kept) + "\0"
            top.run(
                "--literal-pathspecs", "checkout", new, "--pathspec-from-file=-", nul, stdin=listed
            )
        if gone:
            listed = "\0".join(gone) + "\0"
            top.run(
                "--literal-pathspecs",
                "rm",
                "-q",
                "-f",
                "--ignore-unmatch",
                "--pathspec-from-file=-",
                nul,
                stdin=listed,
            )
    if tip == old:
        top.run("update-ref", f"refs/heads/{branch}", new, old)
    journal.unlink(missing_ok=True)
    return f"finished the landing of {new[:12]} on {branch} that a killed run left"


def step_tree(
    top: Git, base: str, final: str, changes: list[tuple[str, str]], state_dir: Path
) -> str:
    """`base` with only the tool's changes applied (not what workspace copy/setup added):
    built in a temporary index, from objects only."""
    index = state_dir / f"step-index.{os.getpid()}.{threading.get_ident()}"
    env = {"GIT_INDEX_FILE": str(index)}
    try:
        top.run("read-tree", base, env=env)
        kept = [path for status, path in changes if status != "D"]
        entries: list[str] = []
        for start in range(0, len(kept), 500):  # argv stays short for huge changes
            listing = top.run("ls-tree", "-r", "-z", final, "--", *kept[start : start + 500])
            entries += [e for e in listing.out.split("\0") if e]
        lines = [
            f"{meta.split()[0]} {meta.split()[2]}\t{path}"
            for meta, _, path in (e.partition("\t") for e in entries)
        ]
        zero = "0" * 40
        lines += [f"0 {zero}\t{path}" for status, path in changes if status == "D"]
        if lines:
            top.run("update-index", "--index-info", stdin="\n".join(lines) + "\n", env=env)
        return top.run("write-tree", env=env).out.strip()
    finally:
        index.unlink(missing_ok=True)
