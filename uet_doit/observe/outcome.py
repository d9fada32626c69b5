"""What a finished run came to: its exit code beside the status `uet status` reads.

`run_bundle` returns it, so a Python caller gets every step's state, attempts, cost and
failure class as data, in the same shapes `uet status --json` prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from uet_doit.bundle.model import Bundle
from uet_doit.observe.status import RunStatus, StepStatus, run_status
from uet_doit.state.records import RunState, StepState
from uet_doit.state.store import RunStore


@dataclass(frozen=True)
class RunResult:
    """What `run_bundle` returns: the exit code `uet run` would exit with, and the run as the
    store has it (run id, each step's state, attempts and cost, the criteria)."""

    exit_code: int
    run: RunStatus
    bundle: Bundle | None = field(default=None, repr=False, compare=False)

    @property
    def run_id(self) -> str:
        return self.run.run_id

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    @property
    def status(self) -> RunState:
        return self.run.status

    @property
    def reason(self) -> str | None:
        return self.run.reason

    @property
    def steps(self) -> list[StepStatus]:
        return self.run.steps

    @property
    def criteria(self) -> list[dict[str, Any]]:
        """Each completion criterion's last evaluation: scope, description, state, detail."""
        return self.run.criteria

    @property
    def cost_usd(self) -> float:
        """What the attempts whose cost is known cost (`run.unknown_cost_steps` are not in it)."""
        return self.run.total_cost_usd

    @property
    def states(self) -> dict[str, StepState]:
        """step id -> final state: the shape most checks want."""
        return {s.step_id: s.status for s in self.run.steps}

    def step(self, step_id: str) -> StepStatus:
        for step in self.run.steps:
            if step.step_id == step_id:
                return step
        msg = f"run {self.run_id} has no step {step_id!r}"
        raise KeyError(msg)


def read_result(store: RunStore, run_id: str, code: int, bundle: Bundle | None) -> RunResult:
    """The result of run `run_id`, once it has ended."""
    return RunResult(exit_code=code, run=run_status(store, run_id), bundle=bundle)
