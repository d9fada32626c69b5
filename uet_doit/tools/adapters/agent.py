"""What the four AI coding CLIs share: the prompt, the output check, options and prices.

Every one of them can answer "done" with exit 0 and nothing written, so a step that names
create_files is only a success when those files exist and are not empty afterwards.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any, ClassVar

from uet_doit.tools.adapters.base import StepRequest, ToolAdapter, ToolResult
from uet_doit.tools.adapters.sessions import planned_session, reported_session
from uet_doit.tools.failures import FailureClass
from uet_doit.tools.prices import LayeredPrices, PriceTable, forecast_prices
from uet_doit.tools.process import ProcessResult
from uet_doit.tools.redact import Redactor

#: the section headers of the prompt; the fake tools in tests read them back
READ_HEADER = "Files to read:"
CREATE_HEADER = "Files to create or update:"


class AgentAdapter(ToolAdapter):
    """Base of the AI CLI adapters: carries the prices (the chain forecasts use too).
    Adapters that can resume their own session set `resumes` and read `resume_session`."""

    ai = True
    resumes: ClassVar[bool] = False
    plans_session: ClassVar[bool] = False  # given its session id up front (`--session-id`)

    def __init__(self, prices: PriceTable | LayeredPrices | None = None) -> None:
        self.prices = prices if prices is not None else forecast_prices()

    def execute(self, request: StepRequest) -> ToolResult:
        result = super().execute(request)
        if self.resumes and result.tool_session is None:
            result.tool_session = reported_session(request.stdout_path, request.stderr_path)
            if result.tool_session is None and self.plans_session and request.stall_timeout:
                result.tool_session = request.resume_session or planned_session(request)
        return scrub_secrets(request, result)


def scrub_secrets(request: StepRequest, result: ToolResult) -> ToolResult:
    """Mask the child's API keys in the attempt's stdout/stderr logs and in its result.

    AI CLIs echo keys in auth errors and debug headers. `parse` has read the real output by
    now; what stays on disk and reaches state.db, messages and reports is masked.
    """
    redactor = Redactor.from_env(request.env)
    for path in (request.stdout_path, request.stderr_path):
        redactor.redact_file(path)
    result.message = redactor.redact(result.message)
    result.output_tail = redactor.redact(result.output_tail)
    return result


def agent_prompt(request: StepRequest) -> str:
    """The instruction, verbatim, then the files to read and to create, one per line."""
    parts = [request.instruction]
    if request.files:
        parts.append("\n".join([READ_HEADER, *(f"- {f}" for f in request.files)]))
    if request.create_files:
        parts.append("\n".join([CREATE_HEADER, *(f"- {f}" for f in request.create_files)]))
    prompt = "\n\n".join(parts)
    # A leading '-' would be parsed as an option by every one of these CLIs.
    return f"Task:\n{prompt}" if prompt.startswith("-") else prompt


def model_name(request: StepRequest) -> str | None:
    model = request.model or request.options.get("model")
    return str(model) if model else None


def extra_args(request: StepRequest) -> list[str]:
    """`args` from tool options / router_config.json: a list, or one string split like sh."""
    value: Any = request.options.get("args")
    if not value:
        return []
    if isinstance(value, str):
        return shlex.split(value)
    return [str(v) for v in value]


def child_env(request: StepRequest, extra: dict[str, str]) -> dict[str, str]:
    env = dict(request.env)
    env.update(extra)
    return env


def read_stdout(request: StepRequest, proc: ProcessResult) -> str:
    """All of stdout (the process result keeps only a tail; token counts may be earlier)."""
    try:
        return request.stdout_path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return proc.stdout


def missing_outputs(request: StepRequest) -> list[str]:
    """create_files that do not exist or are empty after the tool ran."""
    missing = []
    for name in request.create_files:
        path = Path(request.project_root, name)
        try:
            if path.stat().st_size == 0:
                missing.append(name)
        except OSError:
            missing.append(name)
    return missing


def written_outputs(request: StepRequest) -> tuple[str, ...]:
    absent = set(missing_outputs(request))
    return tuple(f for f in request.create_files if f not in absent)


def check_outputs(request: StepRequest, result: ToolResult, tool: str) -> ToolResult:
    """Turn a reported success into MISSING_OUTPUT when a create_file was not written."""
    if not result.success:
        return result
    missing = missing_outputs(request)
    if not missing:
        return result
    result.success = False
    result.failure_class = FailureClass.MISSING_OUTPUT
    note = f"{tool} finished but did not write {', '.join(missing)} (missing or empty)"
    result.message = f"{note}; {result.message}" if result.message else note
    return result


def status_class(status: int) -> FailureClass:
    """An HTTP status from an AI API, as a failure class."""
    if status in (401, 403, 400, 404):
        return FailureClass.PERMANENT
    if status == 429:
        return FailureClass.RATE_LIMIT
    if status == 413:
        return FailureClass.CONTEXT_WINDOW
    if status >= 500 or status in (408, 409, 529):
        return FailureClass.TRANSIENT
    return FailureClass.UNKNOWN


def tail(proc: ProcessResult) -> str:
    return proc.output[-4000:]
