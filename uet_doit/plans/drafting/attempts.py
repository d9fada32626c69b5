"""`uet convert --with`'s calls of the tool, each a one-step run of the routine every step of
a bundle goes through.

The draft is a pseudo-step (`uet-convert` / `draft`) of a run of its own: each call is an
attempt the step policy prepares, records, runs with the local executor (the reaper, logs
capped and redacted, the reported cost checked), concludes and records again, under the
tool's breaker, retries and slots and, with `--max-cost-usd`, a budget the calls may not go
over. The guard extension puts back every file the tool changed (it may change none).
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from uet_doit.plans.drafting.guard import TreeGuard
from uet_doit.run.context import RunContext
from uet_doit.run.executors.attempt import AttemptResult, AttemptSpec
from uet_doit.run.executors.base import LocalExecutor
from uet_doit.run.extensions import StepExtension, StepOutcome
from uet_doit.run.extensions import StepPolicy as PolicyView
from uet_doit.run.policy import StepPolicy, local_slots
from uet_doit.run.resilience import SystemClock
from uet_doit.run.step_spec import Budget, StepSpec
from uet_doit.state.records import RunState
from uet_doit.state.store import RunStore
from uet_doit.tools.routing import AdapterRegistry

WS_ID = "uet-convert"
STEP_ID = "draft"
#: what a call may take when router_config.json gives the tool no timeout_seconds
DRAFT_TIMEOUT_SECONDS = 900.0


class DraftPolicy(StepPolicy):
    """A draft is not a step of a plan: it writes no step state, only its attempts."""

    records_step = False


class DraftGuard(StepExtension):
    """The project as it was before each call, put back after it; what was put back is
    named in `undone`."""

    def __init__(self, root: Path, keep: Path) -> None:
        self.guard = TreeGuard(root, keep)
        self.undone: list[str] = []

    def prepare_attempt(self, policy: PolicyView, spec: AttemptSpec) -> AttemptSpec:
        self.guard.snapshot()
        return spec

    def conclude_attempt(
        self, policy: PolicyView, spec: AttemptSpec, result: AttemptResult
    ) -> AttemptResult:
        self.undone += self.guard.restore()
        return result

    def abandon_attempt(self, policy: PolicyView, spec: AttemptSpec) -> None:
        self.undone += self.guard.restore()


@dataclass
class DraftCall:
    """What one call of the tool left: its outcome, its output log, the files put back."""

    outcome: StepOutcome
    stdout_path: Path | None
    undone: list[str] = field(default_factory=list)


class DraftRun:
    """The run that `uet convert --with` records: started, one call per round, ended."""

    def __init__(
        self,
        root: Path,
        run_id: str,
        bundle_id: str,
        tool: str,
        *,
        timeout: float | None = None,
        max_cost_usd: float | None = None,
    ) -> None:
        self.root = root
        self.tool = tool
        self.timeout = timeout or DRAFT_TIMEOUT_SECONDS
        self.ctx = RunContext.create(run_id, bundle_id, root)
        self.store = RunStore(root)
        self.tools = AdapterRegistry(root)
        self.executor = LocalExecutor(self.tools.resolver())
        self.clock = SystemClock()
        self.slots = local_slots(root / ".uet")
        self.budgets = (
            (Budget("step", STEP_ID, max_cost_usd, "fail"),) if max_cost_usd is not None else ()
        )

    def start(self, bundle_file: str) -> None:
        self.store.start_run(
            self.ctx.run_id, self.ctx.bundle_id, bundle_file=bundle_file, argv=sys.argv
        )

    def end(self, ok: bool, reason: str | None = None) -> None:
        self.store.end_run(self.ctx.run_id, RunState.SUCCEEDED if ok else RunState.FAILED, reason)

    def call(
        self,
        prompt: str,
        *,
        reads: tuple[str, ...],
        creates: tuple[str, ...],
        options: dict[str, Any],
        keep: Path,
    ) -> DraftCall:
        """One call: the step policy's attempts of the tool (a retry after a rate limit
        is one more attempt), recorded in the run store so `uet cost` counts each."""
        step = StepSpec(
            bundle_id=self.ctx.bundle_id,
            ws_id=WS_ID,
            step_id=STEP_ID,
            title="draft the bundle",
            tool=self.tool,
            instruction=prompt,
            files=reads,
            create_files=creates,
            project_root=str(self.root),
            signature=hashlib.sha256(prompt.encode()).hexdigest()[:32],
            timeout=self.timeout,
            tool_options=options,
            max_fix_attempts=0,  # a draft's problems go back with the next prompt instead
            task_kind="convert",
            budgets=self.budgets,
        )
        guard = DraftGuard(self.root, keep)
        policy = DraftPolicy(
            step,
            self.ctx,
            self.store,
            self.tools,
            self.clock,
            self.executor,
            self.slots,
            [guard],
        )
        outcome = policy.run_tool(self.tool)
        row = self.store.latest_attempt(self.ctx.bundle_id, STEP_ID)
        same_run = row is not None and row.run_id == self.ctx.run_id and row.stdout_path
        stdout = Path(str(row.stdout_path)) if row is not None and same_run else None
        return DraftCall(outcome, stdout, guard.undone)
