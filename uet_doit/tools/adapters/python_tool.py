"""`python`: call `context.callable` ("module:function") in a child Python process.

A child keeps the function's crashes, prints and hangs out of the runner, and lets the
step's timeout kill it like any other tool. The function gets one argument, the step
context (a dict); returning False or raising fails the step; returning a dict with
cost_usd/tokens_in/tokens_out records them.
"""

from __future__ import annotations

import json
import sys

from uet_doit.tools.adapters.base import (
    Invocation,
    StepRequest,
    ToolAdapter,
    ToolResult,
    failed_process,
)
from uet_doit.tools.process import ProcessResult

_RUNNER = "uet_doit.tools.adapters._call_python"


def python_child_env(request: StepRequest) -> dict[str, str]:
    """The step's environment with the project root importable first."""
    env = dict(request.env)
    root = str(request.project_root)
    env["PYTHONPATH"] = root + (":" + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


class PythonAdapter(ToolAdapter):
    name = "python"
    local = True
    in_place = True
    cached_by_default = False
    reviewer = False

    def build(self, request: StepRequest) -> Invocation:
        target = request.context.get("callable")
        if not target:
            msg = f"step {request.step_id}: the python tool needs `context.callable`"
            raise ValueError(msg)
        payload = {
            "callable": target,
            "context": {
                "step_id": request.step_id,
                "ws_id": request.ws_id,
                "instruction": request.instruction,
                "files": list(request.files),
                "create_files": list(request.create_files),
                "params": dict(request.context.get("params") or {}),
                "project_root": str(request.project_root),
                "result_file": str(request.result_file),
                "attempt": request.attempt,
            },
        }
        env = python_child_env(request)
        return Invocation(
            argv=[sys.executable, "-m", _RUNNER],
            env=env,
            cwd=request.project_root,
            stdin_data=json.dumps(payload).encode(),
        )

    def parse(self, request: StepRequest, proc: ProcessResult) -> ToolResult:
        if proc.exit_code == 0 and not proc.timed_out:
            return ToolResult(success=True, exit_code=0, output_tail=proc.output[-4000:])
        return failed_process(proc)
