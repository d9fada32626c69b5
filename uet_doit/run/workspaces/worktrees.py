"""Each attempt of an isolated step in its own git worktree, judged and landed from there.

`WorktreeIsolation` is the step extension: before the tool, a worktree and branch
`uet/<run>/<step>/<attempt>` at the landing branch's tip (files copied, setup run); after
it, the change (the tool's own commits squashed) checked against the step's scope and
landed as one commit with provenance trailers, before the step is recorded done. A failed
attempt's worktree is kept for inspection until the step lands or `uet clean`.

The tool is the attacker here. It gets a git dir of its own (workspaces/attempt_git.py); uet
reads what it left as data, through the worktree's administrative dir, with hooks and helpers
off (run/workspaces/git.py); git's config, hooks and info files are compared with a snapshot taken
before it ran and put back if it changed them (`tampered`, nothing lands); a changed path
that is a symbolic link leading out of the worktree is a scope violation; the files the
tool keeps for itself (its adapter's `own_files`) never land.

Inputs the user edited and did not commit are copied in as the attempt's starting point,
never counted as its change; the commit records the inputs' hashes the tool saw
(`Uet-Inputs-SHA256`). A landed output the user deleted is put back from the branch when
nothing it was made from changed (`restored`, no tool call).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from uet_doit.run.executors.attempt import AttemptResult, AttemptSpec, child_env, redacted_result
from uet_doit.run.extensions import AttemptNotRun, StepExtension, StepOutcome, StepPolicy
from uet_doit.run.workspaces.attempt_git import (
    admin_dir,
    drop_private_git,
    give_private_git,
    private_git_dir,
    restore_link,
)
from uet_doit.run.workspaces.files import BranchFiles, differs, escaping_links, inputs_digest
from uet_doit.run.workspaces.git import (
    Git,
    GitSurface,
    commit_message,
    identity_for,
    name_status,
    trailers,
)
from uet_doit.run.workspaces.landing import (
    BranchGuard,
    Landed,
    land,
    landing_lock,
    lock_dir,
    step_tree,
)
from uet_doit.run.workspaces.pool import WorktreePool
from uet_doit.run.workspaces.scope import Scope, ScopeGate
from uet_doit.state.records import (
    AttemptOutcome,
    EventKind,
    RunState,
    StepState,
    WorkspaceRecord,
    WorkspaceState,
)
from uet_doit.state.store import RunStore
from uet_doit.tools.adapters.shell import command_argv
from uet_doit.tools.failures import FailureClass
from uet_doit.tools.process import ToolProcesses, run_process
from uet_doit.tools.routing import resolve_adapter

if TYPE_CHECKING:
    from uet_doit.run.context import RunContext

DEFAULT_DIR = ".uet/worktrees"
_SHOWN_PATHS = 10


def branch_name(run_id: str, step_id: str, attempt: int) -> str:
    """`uet/<run>/<step>/<attempt>`, with what git refuses in a ref name replaced."""
    parts = [run_id, step_id, str(attempt)]
    safe = [p.replace("..", "_").removesuffix(".lock").strip(".") or "_" for p in parts]
    return "uet/" + "/".join(safe)


def worktree_path(root: Path, folder: str | None, run_id: str, step_id: str, attempt: int) -> Path:
    return root / (folder or DEFAULT_DIR) / run_id / f"{step_id}.{attempt}"


def shown(paths: list[str]) -> str:
    more = len(paths) - _SHOWN_PATHS
    return ", ".join(paths[:_SHOWN_PATHS]) + (f" and {more} more" if more > 0 else "")


def remove_worktree(top: Git, store: RunStore, record: WorkspaceRecord) -> None:
    """The worktree folder, its git dirs, its branch and its record; whatever is left."""
    path = Path(record.path)
    restore_link(path, admin_dir(top.common_dir(), path))
    drop_private_git(store.path.parent, path)
    with landing_lock(lock_dir(top), "worktrees"):
        if path.exists():
            result = top.run("worktree", "remove", "--force", "--force", str(path), check=False)
            if result.code != 0:
                shutil.rmtree(path, ignore_errors=True)
                top.run("worktree", "prune", check=False)
        if record.branch:
            top.run("branch", "-D", "-q", record.branch, check=False)
    store.workspaces.remove(record.path)


class WorktreeIsolation(StepExtension):
    """Worktree per attempt, scope, landing. Active only for steps with isolation worktree,
    in runs whose context names a landing branch (uet run in a git repository)."""

    def __init__(
        self, ctx: RunContext, store: RunStore, processes: ToolProcesses | None = None
    ) -> None:
        assert ctx.landing_branch and ctx.git_top
        self.ctx = ctx
        self.store = store
        self.processes = processes  # the run's tools: `workspace.setup` commands are some
        self.branch = ctx.landing_branch
        self.root = ctx.root_path
        self.top = Git(Path(ctx.git_top))
        self.top.identity = identity_for(self.top)
        prefix = os.path.relpath(self.root, ctx.git_top)
        self.prefix = "" if prefix == "." else prefix.replace(os.sep, "/") + "/"
        self.state_dir = self.root / ".uet"
        self.gate = ScopeGate()
        self.pool = WorktreePool(self.top, self.state_dir, store)
        self.common = self.top.common_dir()
        self.guard = BranchGuard(self.top, self.branch)
        self.files = BranchFiles(self.top, self.branch, self.root, self.prefix)
        self.surfaces: dict[tuple[str, int], GitSurface] = {}
        self.inputs_seen: dict[tuple[str, int], str] = {}
        self._own: dict[str, tuple[str, ...]] = {}

    def own_files(self, tool: str) -> tuple[str, ...]:
        """The globs of files `tool` keeps for itself in its working directory."""
        if tool not in self._own:
            try:
                self._own[tool] = tuple(resolve_adapter(tool, self.root).own_files)
            except Exception:  # an unknown tool fails later, with its own message
                self._own[tool] = ()
        return self._own[tool]

    def _add_all(self, wt: Git, tool: str) -> None:
        """Stage the worktree as uet sees it: everything but the tool's own files."""
        excluded = [
            f":(exclude,glob)**/{pattern}{inside}"
            for pattern in self.own_files(tool)
            for inside in ("", "/**")  # the file, or everything in the folder it names
        ]
        wt.run("add", "-A", "--", ".", *excluded, doing="stage the step's changes in its worktree")

    # -- before the tool ---------------------------------------------------------------------
    def before_step(self, policy: StepPolicy) -> StepOutcome | None:
        if policy.spec.isolation != "worktree":
            return None
        return self._recovered(policy) or self._restored(policy)

    def _restored(self, policy: StepPolicy) -> StepOutcome | None:
        """Outputs the user deleted, put back from the branch at no cost: when the step's
        last success landed them, its definition and inputs are as they were then, and the
        tip still holds what it landed."""
        from uet_doit.run.workspaces.provenance import landed_commit  # lazy: start-up time

        step = policy.spec
        missing = [p for p in step.create_files if not os.path.lexists(self.root / p)]
        if not missing or not self.files.checked_out():
            return None
        row = self.store.latest_attempt(step.bundle_id, step.step_id)
        if row is None or row.outcome != AttemptOutcome.SUCCEEDED:
            return None
        if row.signature != step.signature:
            return None
        sha = landed_commit(self.top, self.branch, row.run_id, row.step_id, row.attempt)
        if sha is None:
            return None
        message = self.top.run("log", "-1", "--format=%B", sha).out
        seen = trailers(message).get("Uet-Inputs-SHA256")
        if step.files and seen != inputs_digest(self.root, step.files):
            return None
        if not self.files.same_at_tip(sha, missing):
            return None
        restored = [rel for rel in missing if self.files.write(rel)]
        self.store.event(
            self.ctx.run_id, EventKind.RESTORED, step.step_id, commit=sha, paths=sorted(restored)
        )
        note = f"restored {shown(sorted(restored))} from its commit {sha[:12]} (no tool call)"
        policy.state(StepState.SUCCEEDED, note, row.tool)
        return StepOutcome(StepState.SUCCEEDED, note, row.tool, 0, origin=row.run_id)

    def _recovered(self, policy: StepPolicy) -> StepOutcome | None:
        """A success a killed run recorded and landed, before doit saved it, is not done
        twice, even when other steps' landings changed its files since (which defeats the
        fingerprint check of run/executors/recovery.py): its commit on the branch is the proof."""
        from uet_doit.run.workspaces.provenance import landed_commit  # lazy: start-up time

        step = policy.spec
        row = self.store.latest_attempt(step.bundle_id, step.step_id)
        if (
            row is None
            or row.session == self.ctx.session
            or row.outcome != AttemptOutcome.SUCCEEDED
            or row.run_status not in (RunState.INTERRUPTED, RunState.RUNNING)
            or row.signature != step.signature
        ):
            return None
        sha = landed_commit(self.top, self.branch, row.run_id, row.step_id, row.attempt)
        if sha is None:
            return None
        self.store.event(
            self.ctx.run_id, EventKind.RECOVERED, step.step_id, from_run=row.run_id, commit=sha
        )
        note = f"landed in run {row.run_id} ({sha[:12]})"
        policy.state(StepState.SUCCEEDED, note, row.tool)
        return StepOutcome(StepState.SUCCEEDED, note, row.tool, 0, origin=row.run_id)

    def prepare_attempt(self, policy: StepPolicy, spec: AttemptSpec) -> AttemptSpec:
        step = policy.spec
        if step.isolation != "worktree":
            return spec
        key = (spec.step_id, spec.attempt)
        waited: list[object] = []

        def on_wait(other: object) -> None:
            waited.append(other)
            blocker = other[0] if isinstance(other, tuple) else other
            note = f"waiting for step {blocker}: overlapping scope (conflicts: serialize)"
            policy.state(StepState.WAITING, note, spec.tool)

        self.gate.enter(key, Scope((*step.paths, *step.scope)), step.serialize, on_wait)
        if waited:
            policy.state(StepState.RUNNING, None, spec.tool)
        try:
            return self._prepare(policy, spec)
        except BaseException:
            self.gate.leave(key)
            raise

    def _prepare(self, policy: StepPolicy, spec: AttemptSpec) -> AttemptSpec:
        step = policy.spec
        path = worktree_path(self.root, step.workspace_dir, spec.run_id, spec.step_id, spec.attempt)
        branch = branch_name(spec.run_id, spec.step_id, spec.attempt)
        tip = self.top.rev(f"refs/heads/{self.branch}")
        if tip is None:
            raise AttemptNotRun(self._setup_failed(spec, f"branch {self.branch} does not exist"))
        self.store.workspaces.add(
            str(path),
            branch,
            spec.run_id,
            spec.bundle_id,
            spec.ws_id,
            spec.step_id,
            spec.attempt,
            tip,
        )
        problem = self.pool.open(path, branch, tip)
        wt = None if problem else self.pool.git(path)
        if wt is None:
            raise AttemptNotRun(self._setup_failed(spec, problem or f"no worktree at {path}"))
        workdir = path / self.prefix if self.prefix else path
        spec = replace(spec, project_root=workdir)
        ignored = self._ignored_outputs(wt, step.create_files)
        if ignored:
            raise AttemptNotRun(
                AttemptResult(
                    success=False,
                    outcome=AttemptOutcome.FAILED,
                    failure_class=FailureClass.BUNDLE,
                    message=f"outputs git ignores cannot land from a worktree: {shown(ignored)} "
                    f"(see `git check-ignore -v {ignored[0]}`). Stop ignoring them, or give the "
                    "step `isolation: none` to write them in place",
                )
            )
        copies = self._copies(step.workspace_copy, step.files, workdir)
        copied = len(copies) > len(step.workspace_copy)
        problem = self._copy_and_setup(policy, spec, workdir, copies)
        if problem:
            self.store.workspaces.mark_failed(str(path), FailureClass.WORKSPACE_SETUP, problem)
            raise AttemptNotRun(self._setup_failed(spec, problem))
        if step.workspace_copy or step.workspace_setup or copied:
            # what copy and setup left (not ignored) is the tool's starting point, not its work
            self._add_all(wt, spec.tool)
            self.store.workspaces.set_prepared(str(path), wt.out("write-tree"))
        key = (spec.step_id, spec.attempt)
        self.inputs_seen[key] = inputs_digest(workdir, step.files)
        give_private_git(
            self.top,
            wt,
            path,
            private_git_dir(self.state_dir, path),
            branch,
            self.own_files(spec.tool),
        )
        admin = wt.explicit_dir
        self.surfaces[key] = GitSurface(self.common, admin)
        return spec

    def _ignored_outputs(self, wt: Git, outputs: tuple[str, ...]) -> list[str]:
        """Declared outputs the tip's ignore rules (or the repository's exclude file) hide
        from `git add`: they would be made, paid for and never land."""
        if not outputs:
            return []
        named = [f"{self.prefix}{p}" for p in outputs]
        found = wt.run(
            "check-ignore",
            "--no-index",
            "-z",
            "--stdin",
            check=False,
            stdin="\0".join(named) + "\0",
        )
        hidden = {p for p in found.out.split("\0") if p}
        return [p for p, full in zip(outputs, named, strict=True) if full in hidden]

    def _copy_and_setup(
        self, policy: StepPolicy, spec: AttemptSpec, workdir: Path, copies: list[str]
    ) -> str | None:
        step = policy.spec
        for rel in copies:
            src, dst = self.root / rel, workdir / rel
            try:
                if src.is_dir():
                    shutil.copytree(src, dst, symlinks=True, dirs_exist_ok=True)
                else:
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(src, dst)
            except OSError as exc:
                return f"workspace.copy {rel!r}: {exc.strerror or exc} (in {self.root})"
        setup = step.workspace_setup
        if setup is None:
            return None
        command = setup if isinstance(setup, str) else list(setup)
        out = Path(spec.stdout_path)
        try:
            proc = run_process(
                command_argv(command),
                cwd=workdir,
                env=child_env(spec),
                timeout=spec.timeout,
                stdout_path=out.with_suffix(".setup.stdout"),
                stderr_path=out.with_suffix(".setup.stderr"),
                processes=self.processes,
            )
        except FileNotFoundError:
            return f"workspace.setup: command not found: {command!r}"
        if proc.exit_code == 0 and not proc.timed_out:
            return None
        got = "timed out" if proc.timed_out else f"exit code {proc.exit_code}"
        tail = "\n".join(proc.output.strip().splitlines()[-10:])
        shown_setup = setup if isinstance(setup, str) else " ".join(setup)
        return f"workspace.setup `{shown_setup}` gave {got}:\n{tail}"

    def _copies(self, listed: tuple[str, ...], inputs: tuple[str, ...], workdir: Path) -> list[str]:
        """`workspace.copy`, plus the step's input files that the tip does not hold or holds
        otherwise (made by a step that runs in place, edited and not committed): the tool
        reads what doit tracks."""
        extra = [p for p in inputs if differs(self.root / p, workdir / p)]
        return list(dict.fromkeys([*listed, *extra]))

    def _setup_failed(self, spec: AttemptSpec, message: str) -> AttemptResult:
        return AttemptResult(
            success=False,
            outcome=AttemptOutcome.FAILED,
            failure_class=FailureClass.WORKSPACE_SETUP,
            message=message,
        )

    # -- after the tool ----------------------------------------------------------------------
    def judge_attempt(
        self, policy: StepPolicy, spec: AttemptSpec, result: AttemptResult
    ) -> AttemptResult:
        """The checks that need no landing (worktree there, git's files untouched, the
        change within its scope, no link leading out), run before anything is paid for
        the change (its review: `WorktreeJudge`); the landing checks them again."""
        if policy.spec.isolation != "worktree":
            return result
        record, refused = self._checked(spec, result)
        if refused is not None or record is None or not result.success:
            return refused or result
        wt = self.pool.git(Path(record.path))
        if wt is None:
            return result  # the landing says so, with the record marked
        changes = self._changes(wt, spec, record)[1]
        outside = self._outside(policy, result, record, changes)
        return result if outside is None else redacted_result(outside, child_env(spec))

    def conclude_attempt(
        self, policy: StepPolicy, spec: AttemptSpec, result: AttemptResult
    ) -> AttemptResult:
        if policy.spec.isolation != "worktree":
            return result
        try:
            return self._conclude(policy, spec, result)
        finally:
            self.gate.leave((spec.step_id, spec.attempt))

    def _checked(
        self, spec: AttemptSpec, result: AttemptResult
    ) -> tuple[WorkspaceRecord | None, AttemptResult | None]:
        """The attempt's worktree record, and the failure when it is gone or the tool
        changed git's own files (those are put back at once)."""
        record = self.store.workspaces.find(spec.run_id, spec.step_id, spec.attempt)
        if record is None or not Path(record.path).is_dir():
            # never a success that did not land: the attempt's work is gone
            return record, self._failed(
                result,
                FailureClass.INTERRUPTED,
                "its worktree is gone (removed, or lost with a killed runner); "
                "a new attempt starts from the tip",
            )
        tampered = self._tampered(spec, record)
        if tampered is not None:
            self.store.workspaces.mark_failed(record.path, FailureClass.TAMPERED, tampered)
            return record, self._failed(result, FailureClass.TAMPERED, tampered)
        return record, None

    def _conclude(
        self, policy: StepPolicy, spec: AttemptSpec, result: AttemptResult
    ) -> AttemptResult:
        record, refused = self._checked(spec, result)
        if refused is not None or record is None:
            return refused or result
        if not result.success:
            cls = result.failure_class or FailureClass.UNKNOWN
            self.store.workspaces.mark_failed(record.path, cls, result.message)
            return result
        # a landing message names paths, and a tool can name a file after a secret
        verdict = redacted_result(self._land(policy, spec, result, record), child_env(spec))
        if verdict.success:
            return verdict
        cls = verdict.failure_class or FailureClass.UNKNOWN
        self.store.workspaces.mark_failed(record.path, cls, verdict.message)
        return verdict

    def _tampered(self, spec: AttemptSpec, record: WorkspaceRecord) -> str | None:
        """What the tool changed of git's own files (config, hooks, info), put back before
        uet runs git again; None when it changed nothing there."""
        surface = self.surfaces.pop((spec.step_id, spec.attempt), None)
        if surface is None:
            return None
        changed = surface.changes()
        if not changed:
            return None
        surface.restore(changed)
        self.store.event(
            spec.run_id, EventKind.TAMPERED, spec.step_id, paths=changed, attempt=spec.attempt
        )
        return (
            f"the tool changed git's own files in {self.common}: {shown(changed)}; they were "
            f"put back before uet ran git, and nothing of this attempt landed or ran (its "
            f"worktree is kept: {record.path}). A tool must not change git's configuration "
            "or hooks; run it with `sandbox: auto` to make them read-only"
        )

    def _land(
        self, policy: StepPolicy, spec: AttemptSpec, result: AttemptResult, record: WorkspaceRecord
    ) -> AttemptResult:
        wt = self.pool.git(Path(record.path))
        if wt is None:
            return self._failed(
                result, FailureClass.INTERRUPTED, f"git no longer knows the worktree {record.path}"
            )
        tree, changes = self._changes(wt, spec, record)
        base = record.base
        if record.prepared:
            tree = step_tree(self.top, base, tree, changes, self.state_dir)
        outside = self._outside(policy, result, record, changes)
        if outside is not None:
            return outside
        if not changes:
            self.files.materialise(policy.spec.create_files)
            return result  # nothing to land: done as it is
        keys = {"Uet-Run": spec.run_id, "Uet-Step": spec.step_id, "Uet-Attempt": str(spec.attempt)}
        message = commit_message(policy.spec.title, self._trailers(policy, spec, result))
        doing = f"commit step {spec.step_id}'s changes"
        commit = self.top.run("commit-tree", tree, "-p", base, stdin=message, doing=doing).out
        commit = commit.strip()
        self.top.run("update-ref", f"refs/heads/{record.branch}", commit, check=False)
        step_id = spec.step_id

        def witness(sha: str) -> None:
            self.store.event(spec.run_id, EventKind.LANDING, step_id, commit=sha)

        landed = land(
            self.top,
            self.state_dir,
            self.branch,
            base,
            commit,
            keys,
            self.root,
            guard=self.guard,
            witness=witness,
        )
        if landed.ok:
            self.files.materialise(policy.spec.create_files)
        return self._verdict(policy, spec, result, landed)

    def _changes(
        self, wt: Git, spec: AttemptSpec, record: WorkspaceRecord
    ) -> tuple[str, list[tuple[str, str]]]:
        """The worktree's tree as uet stages it, and its changes since the attempt began."""
        self._add_all(wt, spec.tool)
        tree = wt.out("write-tree", doing="record the step's changes")
        return tree, name_status(self.top, record.prepared or record.base, tree)

    def _outside(
        self,
        policy: StepPolicy,
        result: AttemptResult,
        record: WorkspaceRecord,
        changes: list[tuple[str, str]],
    ) -> AttemptResult | None:
        """The scope violation `changes` are, if any: a path outside the step's scope, or a
        symbolic link leading out of the worktree."""
        scope = Scope((*policy.spec.paths, *policy.spec.scope))
        outside = [
            p
            for _, p in changes
            if not p.startswith(self.prefix) or not scope.allows(p[len(self.prefix) :])
        ]
        if outside:
            return self._failed(
                result,
                FailureClass.SCOPE_VIOLATION,
                f"changed paths outside the step's scope: {shown(outside)}; nothing of this "
                f"attempt landed (its worktree is kept: {record.path}). Add them to the step's "
                "`files`, `create_files` or `scope`, or tell the tool not to touch them",
            )
        links = escaping_links(Path(record.path), changes)
        if links:
            return self._failed(
                result,
                FailureClass.SCOPE_VIOLATION,
                f"changed paths are symbolic links leading out of the worktree: {shown(links)}; "
                f"nothing of this attempt landed (its worktree is kept: {record.path}). A step's "
                "outputs must be files, or links within the project",
            )
        return None

    def _verdict(
        self, policy: StepPolicy, spec: AttemptSpec, result: AttemptResult, landed: Landed
    ) -> AttemptResult:
        if landed.ok:
            self.store.event(
                spec.run_id,
                EventKind.LANDED,
                spec.step_id,
                commit=landed.commit,
                branch=self.branch,
                attempt=spec.attempt,
            )
            return result
        if landed.moved:
            self.store.event(spec.run_id, EventKind.TAMPERED, spec.step_id, branch=landed.moved)
            return self._failed(
                result,
                FailureClass.TAMPERED,
                f"{landed.moved}; nothing of this attempt landed, and no step lands on it "
                "until you check what moved it and run again",
            )
        if landed.conflict:
            return self._failed(
                result,
                FailureClass.MERGE_CONFLICT,
                f"its change conflicts with what landed on {self.branch} since it started "
                f"({shown(list(landed.conflict))}); a new attempt starts from the new tip",
            )
        if landed.edited:
            return self._failed(
                result,
                FailureClass.UNCOMMITTED_EDIT,
                f"you have uncommitted edits to {shown(list(landed.edited))}, which this step "
                "changed; nothing was overwritten. Commit or stash them, then run again",
            )
        why = landed.message  # a git failure says what it could not do; others do not
        why = why if why.startswith("could not ") else f"could not land: {why}"
        return self._failed(result, FailureClass.UNKNOWN, why)

    def _failed(self, result: AttemptResult, cls: FailureClass, message: str) -> AttemptResult:
        return replace(
            result,
            success=False,
            outcome=AttemptOutcome.FAILED,
            failure_class=cls,
            message=message,
        )

    def _trailers(
        self, policy: StepPolicy, spec: AttemptSpec, result: AttemptResult
    ) -> list[tuple[str, str]]:
        cost = f"{result.cost_usd:.6f}" if result.cost_usd is not None else "unknown"
        if result.cost_source == "cache":  # restored from the step cache: nothing was paid
            cost = f"{0.0:.6f}"
        prompt = hashlib.sha256(spec.instruction.encode()).hexdigest()
        inputs = self.inputs_seen.pop((spec.step_id, spec.attempt), None)
        seen = [("Uet-Inputs-SHA256", inputs)] if inputs and spec.files else []
        reviewed = [("Uet-Reviewed-By", result.reviewed_by)] if result.reviewed_by else []
        return [
            ("Uet-Step", spec.step_id),
            ("Uet-Workstream", spec.ws_id),
            ("Uet-Run", spec.run_id),
            ("Uet-Attempt", str(spec.attempt)),
            ("Uet-Tool", spec.tool),
            ("Uet-Model", result.model or spec.model or "unknown"),
            ("Uet-Cost-USD", cost),
            ("Uet-Prompt-SHA256", prompt),
            *seen,
            *reviewed,
        ]

    # -- afterwards ----------------------------------------------------------------------------
    def abandon_attempt(self, policy: StepPolicy, spec: AttemptSpec) -> None:
        self.gate.leave((spec.step_id, spec.attempt))
        record = self.store.workspaces.find(spec.run_id, spec.step_id, spec.attempt)
        if record is not None:
            self.store.workspaces.mark_failed(record.path, FailureClass.INTERRUPTED, "interrupted")

    def after_success(self, policy: StepPolicy, spec: AttemptSpec, result: AttemptResult) -> None:
        """The step landed: none of its worktrees (this one, failed earlier ones) is needed."""
        if policy.spec.isolation != "worktree":
            return
        for record in self.store.workspaces.of_step(spec.bundle_id, spec.step_id):
            mine = (record.run_id, record.attempt) == (spec.run_id, spec.attempt)
            if record.status == WorkspaceState.PARKED:
                continue  # the pool's, not this step's any more
            if mine and Path(record.path).is_dir():
                self.pool.park(Path(record.path), record.branch)
            else:
                remove_worktree(self.top, self.store, record)


class WorktreeJudge(StepExtension):
    """The isolation's judging, as an extension placed before the step review: a change
    that is out of scope, tampered or links out is refused before a reviewer is paid to
    read it (the isolation, placed after the review, lands what passed both). A step without
    a review is judged once, by its landing: a snapshot of a large worktree is not free."""

    def __init__(self, isolation: WorktreeIsolation) -> None:
        self.isolation = isolation

    def conclude_attempt(
        self, policy: StepPolicy, spec: AttemptSpec, result: AttemptResult
    ) -> AttemptResult:
        if policy.spec.review is None:
            return result
        return self.isolation.judge_attempt(policy, spec, result)
