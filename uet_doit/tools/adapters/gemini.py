"""`gemini`: Gemini CLI in prompt mode with `--output-format json`.

Facts (Gemini CLI 0.61, ai-tools.md): success prints indented JSON with no trailing newline;
an API error leaves stdout empty, prints a stack trace then a JSON `error` object on stderr,
and exits with the HTTP status mod 256 (429 -> 173); fixed codes mark configuration
problems. A refused tool call still exits 0: `stats.tools.totalFail` tells. Without
`--skip-trust` it exits 55, and a non-TTY stdin is prepended to the prompt.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from uet_doit.state.unknown_cost import UNPRICED
from uet_doit.tools.adapters.agent import (
    AgentAdapter,
    agent_prompt,
    check_outputs,
    extra_args,
    model_name,
    read_stdout,
    status_class,
    tail,
    written_outputs,
)
from uet_doit.tools.adapters.base import Invocation, StepRequest, ToolResult, failed_process
from uet_doit.tools.adapters.figures import count, mapping
from uet_doit.tools.failures import FailureClass, classify, retry_after_seconds
from uet_doit.tools.process import ProcessResult

#: exit codes gemini derives from an HTTP status (status mod 256)
HTTP_EXIT_CODES = {144: 400, 145: 401, 147: 403, 148: 404, 173: 429, 244: 500, 246: 502}
HTTP_EXIT_CODES |= {247: 503, 248: 504}

#: gemini's own exit codes
FIXED_EXIT_CODES: dict[int, tuple[FailureClass, str]] = {
    41: (
        FailureClass.PERMANENT,
        "invalid auth method: set GEMINI_API_KEY and security.auth.selectedType "
        "in ~/.gemini/settings.json",
    ),
    42: (FailureClass.PERMANENT, "no input reached gemini"),
    44: (FailureClass.PERMANENT, "sandbox error"),
    52: (FailureClass.PERMANENT, "configuration error (~/.gemini/settings.json)"),
    53: (FailureClass.UNKNOWN, "turn limit reached"),
    54: (FailureClass.UNKNOWN, "fatal tool error"),
    55: (
        FailureClass.PERMANENT,
        "untrusted folder: pass --skip-trust or set GEMINI_CLI_TRUST_WORKSPACE=true",
    ),
    130: (FailureClass.INTERRUPTED, "cancelled"),
}


@dataclass
class GeminiStats:
    """Token use per model and tool failures from the JSON result; a figure that is not a
    count makes the tokens (or the failure count) unknown instead of a crash."""

    tokens: dict[str, tuple[int, int]] = field(default_factory=dict)
    tools_failed: int | None = 0
    response: str = ""
    unreadable: bool = False  # some model's token figures are not counts


def read_stats(data: dict[str, Any]) -> GeminiStats:
    stats = mapping(data.get("stats"))
    found = GeminiStats(response=str(data.get("response") or ""))
    for model, entry in mapping(stats.get("models")).items():
        tokens = mapping(mapping(entry).get("tokens"))
        tokens_in = count(tokens.get("prompt") or tokens.get("input") or 0)
        tokens_out = count(tokens.get("candidates") or 0)
        if tokens_in is None or tokens_out is None:
            found.unreadable = True
            continue
        found.tokens[str(model)] = (tokens_in, tokens_out)
    found.tools_failed = count(mapping(stats.get("tools")).get("totalFail") or 0)
    return found


def _objects_from_end(text: str) -> Iterator[dict[str, Any]]:
    """JSON objects starting at the beginning of a line, the last one first."""
    decoder = json.JSONDecoder()
    starts = [i for i, ch in enumerate(text) if ch == "{" and (i == 0 or text[i - 1] == "\n")]
    for start in reversed(starts):
        try:
            data, _ = decoder.raw_decode(text, start)
        except ValueError:
            continue
        if isinstance(data, dict):
            yield data


def result_json(stdout: str) -> dict[str, Any] | None:
    """The result object on stdout (a warning line before it does not hide it)."""
    return next((d for d in _objects_from_end(stdout) if "stats" in d or "response" in d), None)


def error_json(stderr: str) -> dict[str, Any] | None:
    """The `{"session_id", "error": {...}}` object gemini prints after its stack trace."""
    for data in _objects_from_end(stderr):
        if isinstance(data.get("error"), dict):
            error: dict[str, Any] = data["error"]
            return error
    return None


class GeminiAdapter(AgentAdapter):
    name = "gemini"
    executable = "gemini"
    install_hint = "npm install -g @google/gemini-cli"
    resumes = True

    def home_state(self, env: Mapping[str, str]) -> list[Path]:
        return [Path(env.get("HOME") or Path.home()) / ".gemini"]

    def build(self, request: StepRequest) -> Invocation:
        # `--prompt=TEXT`, not `-p TEXT`: yargs would refuse a value that starts with '-', and
        # after `--` the text would be the positional query, which runs interactive
        argv = ["gemini", f"--prompt={agent_prompt(request)}", "--output-format", "json"]
        approval = str(request.options.get("approval_mode") or "auto_edit")  # plan: reviews
        argv += ["--skip-trust", "--approval-mode", approval]
        if request.resume_session:
            argv += ["--resume", request.resume_session]
        if model := model_name(request):
            argv += ["-m", model]
        argv += extra_args(request)
        return Invocation(argv=argv, env=dict(request.env), cwd=request.project_root)

    def parse(self, request: StepRequest, proc: ProcessResult) -> ToolResult:
        if proc.timed_out:
            return failed_process(proc)
        data = result_json(read_stdout(request, proc))
        if proc.exit_code != 0 or data is None:
            return self._failure(proc)
        stats = read_stats(data)
        result = ToolResult(
            success=True, exit_code=0, message="gemini: done", output_tail=tail(proc)
        )
        if stats.tools_failed is None:
            result.message = "gemini: done (its count of failed tool calls is not a number)"
        elif stats.tools_failed:
            result.message = f"gemini: {stats.tools_failed} tool call(s) failed"
        result.files_changed = written_outputs(request)
        self._add_usage(request, stats, result)
        return check_outputs(request, result, "gemini")

    def _failure(self, proc: ProcessResult) -> ToolResult:
        code = proc.exit_code
        error = error_json(proc.stderr)
        message = str(error.get("message") or "") if error else ""
        if code is not None and code in FIXED_EXIT_CODES:
            cls, what = FIXED_EXIT_CODES[code]
            text = f"gemini: {what} (exit {code})" + (f": {message}" if message else "")
            return ToolResult(
                success=False,
                exit_code=code,
                message=text[:500],
                failure_class=cls,
                output_tail=tail(proc),
            )
        status = error.get("code") if error else None
        if not isinstance(status, int):
            status = HTTP_EXIT_CODES.get(code) if code is not None else None
        if status is None and not message:
            if code == 0:
                return failed_process(proc, "gemini printed no JSON result")
            return failed_process(proc)
        cls = status_class(status) if status is not None else classify(code, message)
        if cls is FailureClass.UNKNOWN:
            cls = classify(code, message)
        label = f"API error {status}" if status is not None else "error"
        return ToolResult(
            success=False,
            exit_code=code,
            message=f"gemini {label}: {message}"[:500],
            failure_class=cls,
            retry_after_s=retry_after_seconds(message),
            output_tail=tail(proc),
        )

    def _add_usage(self, request: StepRequest, stats: GeminiStats, result: ToolResult) -> None:
        if stats.unreadable:
            result.message += "; its token figures are not numbers: tokens and cost unknown"
            return
        if not stats.tokens:
            return
        result.tokens_in = sum(t[0] for t in stats.tokens.values())
        result.tokens_out = sum(t[1] for t in stats.tokens.values())
        result.model = model_name(request) or max(stats.tokens, key=lambda m: sum(stats.tokens[m]))
        # Without -m a router model appears next to the main one: price each separately.
        estimates = [self.prices.estimate(m, *t) for m, t in stats.tokens.items() if sum(t)]
        unknown = [e.note for e in estimates if e.cost_usd is None]
        if estimates and not unknown:
            result.cost_usd = sum(e.cost_usd or 0.0 for e in estimates)
            result.cost_source = "price_table"
            result.message += "; " + "; ".join(e.note for e in estimates)
        elif unknown:
            result.cost_source = UNPRICED
            result.message += "; " + unknown[0]
