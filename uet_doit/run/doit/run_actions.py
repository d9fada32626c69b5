"""RunActions: the compiler's action factory for a real run, a StepAction for every step
and a GateAction for every gate, each with the run's context."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from uet_doit.bundle.model import Bundle, Step, Workstream
from uet_doit.run.context import RunContext
from uet_doit.run.doit.action import StepAction
from uet_doit.run.doit.compiler import build_spec, step_outputs
from uet_doit.run.gates import GateAction
from uet_doit.run.step_spec import GateSpec


class RunActions:
    """The compiler's action factory for a real run: every step and gate gets the run's
    context (policies shared by the steps of a workstream are built once)."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self._memo: dict[str, Any] = {}
        self._outputs: dict[str, list[str]] | None = None

    def step(
        self, bundle: Bundle, ws: Workstream, step: Step, signature: str, root: Path
    ) -> list[Any]:
        if self._outputs is None:
            self._outputs = step_outputs(bundle)
        build = functools.partial(
            build_spec, bundle, ws, step, root, self._memo, signature, self._outputs
        )
        return [StepAction(None, self.ctx, build)]

    def gate(self, spec: GateSpec) -> list[Any]:
        return [GateAction(spec, self.ctx)]
