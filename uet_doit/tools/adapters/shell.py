"""`shell`: run `context.command` (a list runs as argv, a string via `sh -c`)."""

from __future__ import annotations

from uet_doit.tools.adapters.base import (
    Invocation,
    StepRequest,
    ToolAdapter,
    ToolResult,
    failed_process,
)
from uet_doit.tools.commands import command_argv
from uet_doit.tools.process import ProcessResult


class ShellAdapter(ToolAdapter):
    name = "shell"
    local = True
    in_place = True
    cached_by_default = False
    reviewer = False

    def build(self, request: StepRequest) -> Invocation:
        command = request.context.get("command")
        if not command:
            msg = f"step {request.step_id}: the shell tool needs `context.command`"
            raise ValueError(msg)
        return Invocation(argv=command_argv(command), env=request.env, cwd=request.project_root)

    def parse(self, request: StepRequest, proc: ProcessResult) -> ToolResult:
        if proc.exit_code == 0 and not proc.timed_out:
            return ToolResult(success=True, exit_code=0, output_tail=proc.output[-4000:])
        return failed_process(proc)


__all__ = ["ShellAdapter", "command_argv"]
