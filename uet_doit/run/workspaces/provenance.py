"""Reading and undoing what isolated steps landed, from the trailers of their commits.

`step_commits` lists the commits steps landed on a branch (newest first), `revert_step`
makes a revert commit of exactly one step's change and forgets the step in doit's state,
so the next run redoes that step (and only it, when it writes the same content again).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from uet_doit.errors import UsageError
from uet_doit.run.workspaces.git import Git, commit_message, identity_for, toplevel, trailers
from uet_doit.run.workspaces.landing import follow_in_doit
from uet_doit.state.doit_backend import DurableSqliteDB
from uet_doit.state.store import RunStore

_SEP = "\x1e"


@dataclass(frozen=True)
class StepCommit:
    sha: str
    subject: str
    date: str
    author: str
    step_id: str
    ws_id: str
    run_id: str
    attempt: str
    tool: str
    model: str
    cost_usd: str
    prompt_sha256: str
    reverts: str | None = None  # a revert commit: the sha it undid

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def repository(root: Path) -> Git:
    top = toplevel(root)
    if top is None:
        raise UsageError(f"{root} is not in a git repository", "steps land commits only in git")
    return Git(top)


def step_commits(root: Path, ref: str = "HEAD", limit: int | None = None) -> list[StepCommit]:
    repo = repository(root)
    if repo.rev(ref) is None:
        return []
    args = ["log", "-z", f"--format=%H{_SEP}%s{_SEP}%aI{_SEP}%an{_SEP}%B", "-E"]
    args += ["--grep=^Uet-(Step|Reverted-Step): "]
    if limit:
        args.append(f"-n{limit}")
    out = repo.run(*args, ref).out
    commits = []
    for entry in out.split("\0"):
        parts = entry.strip("\n").split(_SEP, 4)
        if len(parts) < 5:
            continue
        sha, subject, date, author, body = parts
        keys = trailers(body)
        step = keys.get("Uet-Step") or keys.get("Uet-Reverted-Step")
        if not step:
            continue
        commits.append(
            StepCommit(
                sha=sha,
                subject=subject,
                date=date,
                author=author,
                step_id=step,
                ws_id=keys.get("Uet-Workstream", ""),
                run_id=keys.get("Uet-Run", ""),
                attempt=keys.get("Uet-Attempt", ""),
                tool=keys.get("Uet-Tool", ""),
                model=keys.get("Uet-Model", ""),
                cost_usd=keys.get("Uet-Cost-USD", ""),
                prompt_sha256=keys.get("Uet-Prompt-SHA256", ""),
                reverts=keys.get("Uet-Revert-Of"),
            )
        )
    return commits


def landed_commit(repo: Git, branch: str, run_id: str, step_id: str, attempt: int) -> str | None:
    """The commit an attempt landed on `branch`, if it is there and not reverted since."""
    out = repo.run(
        "log",
        "-z",
        "--format=%H%n%B",
        "-E",
        f"--grep=^Uet-(Step|Reverted-Step): {step_id}$",
        f"refs/heads/{branch}",
        check=False,
    ).out
    reverted: set[str] = set()
    for entry in out.split("\0"):  # newest first: a revert is seen before what it undid
        sha, _, body = entry.strip("\n").partition("\n")
        keys = trailers(body)
        if keys.get("Uet-Revert-Of"):
            reverted.add(keys["Uet-Revert-Of"])
        elif (keys.get("Uet-Run"), keys.get("Uet-Attempt")) == (run_id, str(attempt)):
            return None if sha in reverted else sha
    return None


def landings(commits: list[StepCommit]) -> dict[str, StepCommit]:
    """Each step's newest commit (of `commits`, newest first) not undone by a later revert."""
    reverted = {c.reverts for c in commits if c.reverts}
    found: dict[str, StepCommit] = {}
    for commit in commits:
        if commit.reverts is None and commit.sha not in reverted:
            found.setdefault(commit.step_id, commit)
    return found


def latest_landing(root: Path, step_id: str) -> StepCommit:
    """The step's newest commit on HEAD that is not undone by a later revert."""
    commits = step_commits(root)
    found = landings(commits).get(step_id)
    if found is not None:
        return found
    steps = sorted({c.step_id for c in commits if c.reverts is None})
    hint = f"steps with commits here: {', '.join(steps)}" if steps else "see `uet log`"
    raise UsageError(f"no landed commit of step {step_id!r} on the current branch", hint)


def show_step(root: Path, step_id: str) -> tuple[StepCommit, str]:
    """The step's commit and its diff (`git show --stat --patch`)."""
    commit = latest_landing(root, step_id)
    diff = repository(root).run("show", "--stat", "--patch", "--format=", commit.sha).out
    return commit, diff


def revert_step(root: Path, step_id: str) -> tuple[StepCommit, str]:
    """A revert commit of the step's change; the step is forgotten by doit. Returns the
    reverted commit and the revert's sha."""
    commit = latest_landing(root, step_id)
    repo = repository(root)
    identity = identity_for(repo)
    repo.identity = identity
    if not repo.ok("diff", "--cached", "--quiet"):
        raise UsageError(
            "the git index has staged changes; a revert commit would include them",
            "commit or unstage them (git restore --staged .), then revert again",
        )
    result = repo.run("revert", "--no-commit", commit.sha, check=False)
    if result.code != 0:
        repo.run("revert", "--abort", check=False)
        failure = result.failure(f"revert step {step_id} ({commit.sha[:12]})")
        if "conflict" in result.err.lower() or "overwritten" in result.err:
            raise UsageError(
                failure.error().message,
                "later commits changed the same lines, or you have uncommitted edits there: "
                "resolve it by hand (git revert " + commit.sha[:12] + ")",
            )
        raise UsageError(failure.error().message, failure.advice)
    message = commit_message(
        f"Revert step {step_id}: {commit.subject}",
        [("Uet-Reverted-Step", step_id), ("Uet-Revert-Of", commit.sha)],
    )
    repo.run("commit", "-q", "--no-verify", "-F", "-", stdin=message, doing="commit the revert")
    follow_in_doit(repo, root, "HEAD~1", "HEAD")  # other steps' state of shared files
    forget_step(root, commit.run_id, step_id)
    return commit, repo.out("rev-parse", "HEAD")


def forget_step(root: Path, run_id: str, step_id: str) -> None:
    """Drop the step from doit's state, so the next run does it again."""
    from doit.dependency import JSONCodec

    store = RunStore(root)
    run = store.run(run_id) if store.exists() else None
    dep_file = root / ".doit.db"
    if run is None or not dep_file.exists():
        return
    # the task name is `<bundle task basename>:<step>` (Bundle.task_basename)
    basename = run.bundle_id.lower().replace("-", "_").replace(".", "_")
    db = DurableSqliteDB(str(dep_file), JSONCodec())
    db.remove(f"{basename}:{step_id}")
    db.dump()
