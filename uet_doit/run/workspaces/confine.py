"""Each attempt's OS sandbox (tools/sandbox/__init__.py), chosen from the step's `sandbox:` level.

An isolated attempt (its own worktree) may write its worktree, its own git dir
(run/workspaces/attempt_git.py) and its scratch folder; the project, its git dir and `.uet/` are
read-only. An attempt in place gets a sandbox only when a level is named explicitly
(`auto` leaves commands in the project as they were): the project is writable, its
`.uet/`, `.doit.db*` and git dir read-only. The tool's own state under $HOME is added by
its adapter (`home_state`). A level this machine cannot provide fails the attempt as
`not_installed`, before the tool is called.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from uet_doit.run.executors.attempt import AttemptResult, AttemptSpec
from uet_doit.run.extensions import AttemptNotRun, StepExtension, StepPolicy
from uet_doit.run.workspaces.attempt_git import private_git_dir
from uet_doit.run.workspaces.git import Git, GitError
from uet_doit.state.records import AttemptOutcome
from uet_doit.state.store import RunStore
from uet_doit.tools.failures import FailureClass
from uet_doit.tools.sandbox import BindKind, SandboxUnavailable, attempt_spec, resolve

if TYPE_CHECKING:
    from uet_doit.run.context import RunContext


class Confinement(StepExtension):
    def __init__(self, ctx: RunContext, store: RunStore) -> None:
        self.root = ctx.root_path
        self.store = store
        self.git_top = Path(ctx.git_top) if ctx.git_top else None
        self.git_dir = _git_dir(self.git_top or self.root)

    def prepare_attempt(self, policy: StepPolicy, spec: AttemptSpec) -> AttemptSpec:
        level = policy.spec.sandbox
        isolated = spec.project_root != self.root
        if not isolated and level == "auto":
            return spec
        try:
            mechanism = resolve(level)
        except SandboxUnavailable as exc:
            raise AttemptNotRun(
                AttemptResult(
                    success=False,
                    outcome=AttemptOutcome.FAILED,
                    failure_class=FailureClass.NOT_INSTALLED,
                    message=f"{exc.message}; {exc.hint}",
                )
            ) from None
        if mechanism is None:
            return spec
        scratch = spec.scratch_dir or spec.project_root
        temp = scratch / "tmp"
        layers: list[tuple[list[Path], BindKind]]
        if isolated:
            record = self.store.workspaces.find(spec.run_id, spec.step_id, spec.attempt)
            tree = Path(record.path) if record is not None else spec.project_root
            readonly = [self.git_top or self.root, self.root]
            if self.git_dir is not None:
                readonly.append(self.git_dir)
            own = [tree, private_git_dir(self.root / ".uet", tree), scratch, temp]
            layers = [(readonly, "ro"), (own, "own")]
        else:
            state = [self.root / ".uet", *sorted(self.root.glob(".doit.db*"))]
            if self.git_dir is not None:
                state.append(self.git_dir)
            layers = [([self.root], "own"), (state, "ro"), ([scratch, temp], "own")]
        sandbox = attempt_spec(mechanism, layers)
        env = {**spec.env, "TMPDIR": str(temp)}
        return replace(spec, sandbox=sandbox, env=env)


def _git_dir(start: Path) -> Path | None:
    """The project's git common dir (never a worktree's `.git` file), if any."""
    try:
        return Git(start).common_dir()
    except (GitError, FileNotFoundError):  # not a repository, or no git installed
        return None
