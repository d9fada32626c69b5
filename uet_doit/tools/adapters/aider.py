"""`aider`: headless aider-chat, judged by its output because it exits 0 after API errors.

Facts this builds on (aider 0.86, see ai-tools.md): every API failure exits 0 and is only
visible as `litellm.XxxError` plus a one-line description; aider retries rate limits and
server errors itself (`Retrying in N seconds...`), so only an error that is not followed by
a retry or a later model call is the outcome; files named on the command line are created
empty before the model is called; a Traceback on stderr at exit is harmless.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from uet_doit.state.unknown_cost import UNPRICED
from uet_doit.tools.adapters.agent import (
    AgentAdapter,
    agent_prompt,
    check_outputs,
    child_env,
    extra_args,
    model_name,
    read_stdout,
    tail,
    written_outputs,
)
from uet_doit.tools.adapters.base import Invocation, StepRequest, ToolResult, failed_process
from uet_doit.tools.adapters.figures import count
from uet_doit.tools.failures import FailureClass, retry_after_seconds
from uet_doit.tools.process import ProcessResult

_NUM = r"[\d.,]+k?"
_TOKENS = re.compile(
    rf"^Tokens: (?P<sent>{_NUM}) sent(?:, (?P<write>{_NUM}) cache write)?"
    rf"(?:, (?P<hit>{_NUM}) cache hit)?, (?P<recv>{_NUM}) received\."
    r"(?: Cost: \$(?P<msg>[\d.,]+) message, \$(?P<session>[\d.,]+) session\.)?",
)
_RETRYING = re.compile(r"^Retrying in [\d.]+ seconds")
_APPLIED = re.compile(r"^Applied edit to (.+?)\s*$")
_MODEL = re.compile(r"^Model: (\S+)")
_BAD_OPTION = re.compile(r"^aider: error: .*$", re.M)

# Checked per line, in order: a context-window error is wrapped in a BadRequestError.
_API_ERRORS: tuple[tuple[FailureClass, re.Pattern[str]], ...] = (
    (
        FailureClass.PERMANENT,
        re.compile(r"^litellm\.AuthenticationError\b|not able to authenticate you"),
    ),
    (FailureClass.CONTEXT_WINDOW, re.compile(r"^litellm\.ContextWindowExceededError\b")),
    (FailureClass.RATE_LIMIT, re.compile(r"^litellm\.RateLimitError\b|has rate limited you")),
    (
        FailureClass.TRANSIENT,
        re.compile(
            r"^litellm\.(InternalServerError|APIConnectionError|ServiceUnavailableError|"
            r"Timeout|APIError)\b|servers are down or overloaded"
        ),
    ),
    (
        FailureClass.PERMANENT,
        re.compile(r"^litellm\.(NotFoundError|BadRequestError|PermissionDeniedError)\b"),
    ),
)


def parse_token_count(text: str) -> int | None:
    """aider's token figures: `950`, `2.3k`, `12k`, `1500k`; None for what is no count
    (`1.2.3`, a 400-digit run)."""
    text = text.replace(",", "")
    scale = 1000 if text.endswith("k") else 1
    return count(_number(text.removesuffix("k")) * scale)


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def _plus(total: int | None, found: int | None) -> int | None:
    return None if total is None or found is None else total + found


@dataclass
class AiderReport:
    """What aider's stdout says happened."""

    calls: int = 0
    priced_calls: int = 0
    tokens_in: int | None = 0  # None: a figure was no count, so the total is unknown
    tokens_out: int | None = 0
    cost_usd: float | None = 0.0
    model: str | None = None
    edited: list[str] = field(default_factory=list)
    error_class: FailureClass | None = None
    error_lines: list[str] = field(default_factory=list)


def read_report(stdout: str) -> AiderReport:
    """Sum every cost line; keep the last API error that no retry or later call superseded."""
    report = AiderReport()
    for raw in stdout.splitlines():
        line = raw.strip()
        if match := _TOKENS.match(line):
            report.calls += 1
            report.tokens_in = _plus(report.tokens_in, parse_token_count(match["sent"]))
            report.tokens_out = _plus(report.tokens_out, parse_token_count(match["recv"]))
            if match["msg"] is not None:
                report.priced_calls += 1
                cost = _number(match["msg"].replace(",", ""))
                so_far = report.cost_usd
                report.cost_usd = so_far + cost if so_far is not None and cost >= 0 else None
            report.error_class, report.error_lines = None, []
        elif _RETRYING.match(line):
            report.error_class, report.error_lines = None, []
        elif match := _APPLIED.match(line):
            report.edited.append(match[1])
        elif (match := _MODEL.match(line)) and report.model is None:
            report.model = match[1]
        else:
            for cls, pattern in _API_ERRORS:
                if pattern.search(line):
                    report.error_class = report.error_class or cls
                    report.error_lines.append(line)
                    break
    return report


#: a note on the cost of an attempt whose aider made calls its cost lines leave out
HIDDEN_CALLS_NOTE = (
    "aider's commit-message calls (auto_commits) are not in its Cost lines: the cost "
    "recorded is what it printed, a lower bound"
)


def _no_hidden_calls(opts: Mapping[str, Any]) -> list[str]:
    """In git mode aider asks the model for a message for each commit it makes (its own
    edits, and dirty files before them), calls its `Cost:` lines leave out. uet squashes
    and writes the commit itself, so they are turned off unless `auto_commits` asks for
    aider's commits."""
    if not opts.get("git") or opts.get("auto_commits"):
        return []
    return ["--no-auto-commits", "--no-dirty-commits"]


class AiderAdapter(AgentAdapter):
    name = "aider"
    executable = "aider"
    install_hint = "pipx install aider-chat"
    #: its chat and input history, tags cache (git mode), and what it adds to .gitignore
    own_files = (".aider*",)

    def home_state(self, env: Mapping[str, str]) -> list[Path]:
        return [Path(env.get("HOME") or Path.home()) / ".aider"]

    def build(self, request: StepRequest) -> Invocation:
        message_file = request.stdout_path.with_suffix(".message.txt")
        message_file.parent.mkdir(parents=True, exist_ok=True)
        message_file.write_text(agent_prompt(request), encoding="utf-8")
        opts = request.options
        argv = ["aider", "--yes-always"]
        if not (opts.get("auto_commits") or opts.get("git")):
            argv.append("--no-git")
        else:
            argv.append("--no-gitignore")  # it would append `.aider*` to the user's .gitignore
        argv += _no_hidden_calls(opts)
        argv += [
            "--no-pretty",
            "--no-stream",
            "--no-check-update",
            "--no-analytics",
            "--no-show-release-notes",
        ]
        if model := model_name(request):
            argv += ["--model", model]
        if edit_format := opts.get("edit_format"):
            argv += ["--edit-format", str(edit_format)]
        if scratch := request.scratch_dir:  # its history files, out of what lands
            argv += ["--chat-history-file", str(scratch / ".aider.chat.history.md")]
            argv += ["--input-history-file", str(scratch / ".aider.input.history")]
        argv += extra_args(request)
        argv += ["--message-file", str(message_file)]
        # after `--` (argparse's end of options) no file name can be read as an option
        argv += ["--", *dict.fromkeys([*request.files, *request.create_files])]
        return Invocation(
            argv=argv,
            env=child_env(request, {"COLUMNS": "200"}),
            cwd=request.project_root,
        )

    def parse(self, request: StepRequest, proc: ProcessResult) -> ToolResult:
        report = read_report(read_stdout(request, proc))
        if proc.exit_code == 2 and not proc.timed_out:
            found = _BAD_OPTION.search(proc.stderr)
            result = ToolResult(
                success=False,
                exit_code=2,
                message=f"aider rejected its options: {found[0] if found else 'exit code 2'}",
                failure_class=FailureClass.PERMANENT,
                output_tail=tail(proc),
            )
        elif proc.exit_code != 0 or proc.timed_out:
            result = failed_process(proc)
        elif report.error_class is not None:
            result = ToolResult(
                success=False,
                exit_code=0,
                message="aider: " + " ".join(report.error_lines[-2:])[:500],
                failure_class=report.error_class,
                retry_after_s=retry_after_seconds("\n".join(report.error_lines)),
                output_tail=tail(proc),
            )
        else:
            result = ToolResult(
                success=True,
                exit_code=0,
                message=f"aider: {report.calls} model call(s)",
                output_tail=tail(proc),
            )
        self._add_usage(request, report, result)
        if request.options.get("auto_commits") and report.calls:
            result.message = f"{result.message}; {HIDDEN_CALLS_NOTE}"
        return check_outputs(request, result, "aider")

    def _add_usage(self, request: StepRequest, report: AiderReport, result: ToolResult) -> None:
        result.model = report.model or model_name(request)
        result.files_changed = tuple(
            dict.fromkeys([*self._requested(request, report.edited), *written_outputs(request)])
        )
        if not report.calls:
            return
        result.tokens_in, result.tokens_out = report.tokens_in, report.tokens_out
        if report.priced_calls:
            if report.cost_usd is None:
                result.message += "; its cost line is not a number: cost unknown"
                return
            result.cost_usd, result.cost_source = report.cost_usd, "reported"
            return
        if report.tokens_in is None or report.tokens_out is None:
            result.message += "; its token figures are not numbers: tokens and cost unknown"
            return
        estimate = self.prices.estimate(result.model, report.tokens_in, report.tokens_out)
        result.cost_usd = estimate.cost_usd
        result.cost_source = "price_table" if estimate.cost_usd is not None else UNPRICED
        result.message = f"{result.message}; {estimate.note}"

    @staticmethod
    def _requested(request: StepRequest, edited: list[str]) -> list[str]:
        """aider names files relative to its own root: map them back to the step's paths."""
        requested = [*request.files, *request.create_files]
        names = []
        for name in edited:
            match = next((r for r in requested if r == name or r.endswith("/" + name)), name)
            names.append(match)
        return names
