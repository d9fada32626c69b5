"""Attempts on workers without a shared filesystem (`uet run --executor dask --no-shared-fs`).

The coordinator sends git, not files: the project's history once per worker (a bundle of
the run's base commit), and per attempt a small bundle holding a snapshot commit of its
working tree (tracked and untracked files, not ignored ones, not `.uet/`). The worker
keeps a cached clone per project, checks the snapshot out in a clean tree of its own,
runs the attempt there, and returns the change as a binary patch with the logs. The
coordinator applies the patch to its tree; a patch that no longer applies (another step
changed the same lines meanwhile) fails the attempt as `merge_conflict`.

An isolated step's attempt is snapshotted from its worktree, and its patch is applied in
that worktree, never to the project: the coordinator then scope-checks, commits and lands
it exactly as a local attempt (run/workspaces/worktrees.py).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from uet_doit.errors import UsageError
from uet_doit.run.executors.attempt import AttemptResult, AttemptSpec, run_attempt
from uet_doit.run.workspaces.attempt_git import admin_dir
from uet_doit.run.workspaces.git import SAFE_CONFIG
from uet_doit.state.records import AttemptOutcome
from uet_doit.tools.failures import FailureClass
from uet_doit.tools.sandbox import attempt_spec

#: what never goes into a snapshot: uet's and doit's own state (as ignore rules, not
#: pathspecs: git refuses a pathspec naming a path its .gitignore already ignores)
EXCLUDED = "/.uet/\n/.doit.db*\n"
#: who the snapshot commits are by (they never leave uet's own refs)
_ME = {
    "GIT_AUTHOR_NAME": "uet-doit",
    "GIT_AUTHOR_EMAIL": "uet-doit@localhost",
    "GIT_COMMITTER_NAME": "uet-doit",
    "GIT_COMMITTER_EMAIL": "uet-doit@localhost",
}
#: the most of each log a worker sends back
LOG_BYTES = 1 << 20


class GitError(Exception):
    """A git command failed; its stderr says why."""


def git(cwd: Path, *args: str, env: dict[str, str] | None = None, data: bytes | None = None) -> str:
    proc = subprocess.run(
        ["git", *SAFE_CONFIG, "-c", "protocol.file.allow=always", *args],  # bundle files
        cwd=cwd,
        env={**os.environ, **(env or {})},
        input=data,
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0:
        msg = f"git {' '.join(args[:3])}: {proc.stderr.decode(errors='replace').strip()}"
        raise GitError(msg)
    return proc.stdout.decode(errors="replace").strip()


# -- coordinator ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    commit: str
    bundle: bytes  # the snapshot commit, with the run's base as prerequisite


class ProjectTree:
    """The coordinator's side: the run's base commit, snapshots, landing patches."""

    def __init__(self, root: Path) -> None:
        self.root = root
        try:
            self.base = git(root, "rev-parse", "--verify", "HEAD^{commit}")
            top = Path(git(root, "rev-parse", "--show-toplevel"))
        except (GitError, FileNotFoundError) as exc:
            raise UsageError(
                f"--no-shared-fs sends the project to the workers with git, but {root} is "
                f"not a git repository with a commit ({exc})",
                "run `git init && git add -A && git commit -m start` first",
            ) from None
        if top.resolve() != root.resolve():
            raise UsageError(
                f"--no-shared-fs needs the project root to be the top of its git repository "
                f"({top})",
                "run uet from the repository's top folder",
            )
        first = git(root, "rev-list", "--max-parents=0", "HEAD").splitlines()[0]
        self.project_id = hashlib.sha256(f"{first}\n{root.resolve()}".encode()).hexdigest()[:16]
        self._lock = threading.Lock()  # git's index.lock: one writer of refs at a time

    def base_bundle(self) -> bytes:
        """The history up to the base commit: sent once, kept by each worker."""
        return self._bundle("refs/uet/base", self.base, exclude=None)

    def isolated(self, spec: AttemptSpec) -> Path | None:
        """The worktree of an isolated attempt (its workdir), None for one in place."""
        workdir = spec.project_root
        return None if workdir.resolve() == self.root.resolve() else workdir

    def snapshot(self, key: str, worktree: Path | None = None) -> Snapshot:
        """A commit of the working tree (or of an isolated attempt's worktree) as it is now,
        on top of the run's base."""
        with tempfile.TemporaryDirectory(prefix="uet-snapshot-") as tmp:
            index = Path(tmp) / "index"
            excludes = Path(tmp) / "exclude"
            excludes.write_text(EXCLUDED, encoding="utf-8")
            env = {"GIT_INDEX_FILE": str(index)}
            if worktree is not None:  # through its administrative dir, never its .git file
                env |= self._worktree_env(worktree)
                git(worktree, "read-tree", "HEAD", env=env)
            else:
                try:  # start from the real index: its stat data spares hashing unchanged files
                    shutil.copyfile(
                        self.root / git(self.root, "rev-parse", "--git-path", "index"), index
                    )
                except OSError:
                    git(self.root, "read-tree", self.base, env=env)
            where = worktree or self.root
            ignore = ["-c", f"core.excludesFile={excludes}"]
            git(where, *ignore, "add", "-A", "--", ".", env=env)
            tree = git(where, "write-tree", env=env)
        commit = git(self.root, "commit-tree", tree, "-p", self.base, "-m", f"uet {key}", env=_ME)
        return Snapshot(commit, self._bundle(f"refs/uet/attempts/{key}", commit, self.base))

    def _worktree_env(self, worktree: Path) -> dict[str, str]:
        common = git(self.root, "rev-parse", "--path-format=absolute", "--git-common-dir")
        admin = admin_dir(Path(common), worktree)
        if admin is None:
            raise GitError(f"git no longer knows the worktree {worktree}")
        return {"GIT_DIR": str(admin), "GIT_WORK_TREE": str(worktree)}

    def _bundle(self, ref: str, commit: str, exclude: str | None) -> bytes:
        with self._lock, tempfile.TemporaryDirectory(prefix="uet-bundle-") as tmp:
            path = Path(tmp) / "b.bundle"
            git(self.root, "update-ref", ref, commit)
            try:
                revs = [ref, f"^{exclude}"] if exclude else [ref]
                git(self.root, "bundle", "create", "-q", str(path), *revs)
            finally:
                if exclude:  # per-attempt refs are dropped; the base ref keeps the run's base
                    git(self.root, "update-ref", "-d", ref)
            return path.read_bytes()

    def land(self, spec: AttemptSpec, answer: RemoteAnswer) -> AttemptResult:
        """Write the attempt's logs where a local attempt has them and apply its change."""
        for path, text in ((spec.stdout_path, answer.stdout), (spec.stderr_path, answer.stderr)):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(text, encoding="utf-8")
        result = answer.result
        if not answer.patch.strip():
            return result
        worktree = self.isolated(spec)
        try:
            if worktree is None:
                git(self.root, "apply", "--binary", "--whitespace=nowarn", "-", data=answer.patch)
            else:  # into the attempt's worktree: scope-checked and landed from there
                env = self._worktree_env(worktree)
                git(
                    worktree,
                    "apply",
                    "--binary",
                    "--whitespace=nowarn",
                    "-",
                    data=answer.patch,
                    env=env,
                )
        except GitError as exc:
            note = f"its changes do not apply to the project any more ({exc})"
            if not result.success:
                return replace(result, message=f"{result.message}; {note}")
            return replace(
                result,
                success=False,
                outcome=AttemptOutcome.FAILED,
                failure_class=FailureClass.MERGE_CONFLICT,
                message=f"the step succeeded on worker {result.worker}, but {note}; "
                "another step changed the same files: run it again",
            )
        return result


@dataclass(frozen=True)
class RemoteAnswer:
    result: AttemptResult
    patch: bytes
    stdout: str
    stderr: str

    def to_json(self) -> str:
        return json.dumps(
            {
                "result": json.loads(self.result.to_json()),
                "patch": base64.b64encode(self.patch).decode(),
                "stdout": self.stdout,
                "stderr": self.stderr,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> RemoteAnswer:
        data = json.loads(text)
        return cls(
            AttemptResult.from_json(json.dumps(data["result"])),
            base64.b64decode(data["patch"]),
            data["stdout"],
            data["stderr"],
        )


# -- worker -----------------------------------------------------------------------------------


def cache_root() -> Path:
    """Where a worker keeps its clones: $UET_DASK_CACHE, else ~/.cache/uet-doit/dask."""
    configured = os.environ.get("UET_DASK_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "uet-doit" / "dask"


def run_in_clone(
    spec: AttemptSpec,
    project_id: str,
    base: str,
    base_bundle: bytes,
    bundle: bytes,
    commit: str,
    started: Callable[[int], None] | None = None,
) -> RemoteAnswer:
    """Check `commit` out in a clean tree of this thread, run the attempt there, and
    answer with the change it made (a binary patch against `commit`) and its logs."""
    home = cache_root() / project_id
    repo = home / "repo.git"
    with _clone_lock(home):
        if not (repo / "HEAD").exists():
            repo.parent.mkdir(parents=True, exist_ok=True)
            git(home, "init", "-q", "--bare", str(repo))
        if not _has(repo, base):
            _fetch(repo, base_bundle, "refs/uet/base")
        _fetch(repo, bundle, "refs/uet/attempts/*")
        tree = home / "trees" / f"t{threading.get_ident()}"
        if not (tree / ".git").exists():
            git(repo, "worktree", "prune")
            git(repo, "worktree", "add", "-q", "--detach", "--force", str(tree), commit)
    git(tree, "checkout", "-q", "--detach", "-f", commit)
    git(tree, "clean", "-q", "-fdx")
    for name in spec.create_files:  # git keeps no empty folders: outputs' folders exist here
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="uet-attempt-") as tmp:
        local = _remapped(spec, tree, Path(tmp))
        result = run_attempt(local, None, started)
        git(tree, "add", "-A", "--", ".")
        declared = [p for p in spec.create_files if (tree / p).exists()]
        if declared:  # outputs the project's .gitignore hides still land
            git(tree, "add", "-f", "--", *declared)
        patch = subprocess.run(
            ["git", "diff", "--cached", "--binary", commit],
            cwd=tree,
            capture_output=True,
            check=True,
        ).stdout
        return RemoteAnswer(result, patch, _tail(local.stdout_path), _tail(local.stderr_path))


@contextlib.contextmanager
def _clone_lock(home: Path) -> Iterator[None]:
    """One thread at a time updates a project's clone: a flock belongs to one opening of
    the file, so it shuts out this worker's other threads and the other workers of this
    machine that share the cache folder, with no table of thread locks."""
    home.mkdir(parents=True, exist_ok=True)
    with (home / "clone.lock").open("a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield  # released when the file closes


def _has(repo: Path, commit: str) -> bool:
    with contextlib.suppress(GitError):
        git(repo, "cat-file", "-e", f"{commit}^{{commit}}")
        return True
    return False


def _fetch(repo: Path, bundle: bytes, refs: str) -> None:
    with tempfile.NamedTemporaryFile(suffix=".bundle") as fh:
        fh.write(bundle)
        fh.flush()
        git(repo, "fetch", "-q", fh.name, f"+{refs}:{refs}")


def _remapped(spec: AttemptSpec, tree: Path, logs: Path) -> AttemptSpec:
    """The spec with the worker's tree as project and its logs in a temp folder."""
    name = spec.stdout_path.name.removesuffix(".stdout")
    result_file = logs / f"{name}.result.json"
    env = dict(spec.env)
    env.update({"UET_PROJECT_ROOT": str(tree), "UET_RESULT_FILE": str(result_file)})
    sandbox = spec.sandbox
    if sandbox is not None:  # the coordinator's paths mean nothing here: the worker's own
        own = [tree, logs, logs / "tmp"]
        sandbox = attempt_spec(sandbox.level, [(own, "own")])
        env["TMPDIR"] = str(logs / "tmp")
    return replace(
        spec,
        sandbox=sandbox,
        scratch_dir=logs / "scratch",
        project_root=tree,
        config_root=tree,
        stdout_path=logs / f"{name}.stdout",
        stderr_path=logs / f"{name}.stderr",
        result_file=result_file,
        exit_file=None,
        env=env,
    )


def _tail(path: Path) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - LOG_BYTES))
            return fh.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""
