"""`codex`: Codex CLI `exec --json`, read from its JSONL event stream.

Facts (Codex 0.169, ai-tools.md): the default sandbox is read-only (writes silently fail),
outside a git repository it refuses to run without `--skip-git-repo-check`, a non-TTY stdin
is read and appended to the prompt, and without network it retries forever (the step
timeout is what stops it). It reports tokens, never dollars: cost comes from the price table.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
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
    tail,
    written_outputs,
)
from uet_doit.tools.adapters.base import Invocation, StepRequest, ToolResult, failed_process
from uet_doit.tools.adapters.figures import count, mapping
from uet_doit.tools.failures import FailureClass, classify, retry_after_seconds
from uet_doit.tools.prices import CLI_DEFAULT_MODELS
from uet_doit.tools.process import ProcessResult

_CODEX_ERRORS: tuple[tuple[FailureClass, re.Pattern[str]], ...] = (
    (FailureClass.PERMANENT, re.compile(r"\b(401|403)\b|unauthori[sz]ed|forbidden", re.I)),
    (FailureClass.RATE_LIMIT, re.compile(r"\b429\b|too many requests", re.I)),
    (FailureClass.TRANSIENT, re.compile(r"\b5\d\d\b|high demand|internal server error", re.I)),
    (FailureClass.RATE_LIMIT, re.compile(r"retry limit", re.I)),
)


def codex_class(text: str, exit_code: int | None) -> FailureClass:
    for cls, pattern in _CODEX_ERRORS:
        if pattern.search(text):
            return cls
    return classify(exit_code, text)


@dataclass
class CodexEvents:
    """What the JSONL stream says happened."""

    turns: int = 0
    tokens_in: int | None = 0
    tokens_out: int | None = 0
    files: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    turn_failed: str | None = None
    last_message: str = ""


def read_events(stdout: str, root: Path) -> CodexEvents:
    events = CodexEvents()
    for line in stdout.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if not isinstance(event, dict):
            continue
        kind = event.get("type")
        if kind == "turn.completed":
            usage = mapping(event.get("usage"))
            events.turns += 1
            events.tokens_in = _add(events.tokens_in, usage.get("input_tokens"))
            events.tokens_out = _add(events.tokens_out, usage.get("output_tokens"))
        elif kind == "turn.failed":
            error = mapping(event.get("error"))
            events.turn_failed = str(error.get("message") or "turn failed")
        elif kind == "error":
            events.errors.append(str(event.get("message") or ""))
        elif kind == "item.completed":
            _read_item(mapping(event.get("item")), root, events)
    return events


def _add(sum_so_far: int | None, value: Any) -> int | None:
    """A running token total; once one figure is not a count, the total is unknown."""
    found = count(value or 0)
    return None if sum_so_far is None or found is None else sum_so_far + found


def _read_item(item: Mapping[str, Any], root: Path, events: CodexEvents) -> None:
    if item.get("type") == "agent_message":
        events.last_message = str(item.get("text") or "")
    elif item.get("type") == "file_change" and item.get("status") != "failed":
        changes = item.get("changes")
        for change in changes if isinstance(changes, list) else []:
            path = Path(str(mapping(change).get("path") or ""))
            if path.is_absolute() and path.is_relative_to(root):
                path = path.relative_to(root)
            if str(path) not in events.files:
                events.files.append(str(path))


def configured_model(env: Mapping[str, str]) -> str | None:
    """The `model` of $CODEX_HOME/config.toml (what codex uses without `-m`)."""
    home = env.get("CODEX_HOME") or str(Path(env.get("HOME") or Path.home()) / ".codex")
    try:
        with (Path(home) / "config.toml").open("rb") as fh:
            model = tomllib.load(fh).get("model")
    except (OSError, tomllib.TOMLDecodeError):
        return None
    return str(model) if model else None


class CodexAdapter(AgentAdapter):
    name = "codex"
    executable = "codex"
    install_hint = "npm install -g @openai/codex"
    resumes = True

    def home_state(self, env: Mapping[str, str]) -> list[Path]:
        return [Path(env.get("CODEX_HOME") or Path(env.get("HOME") or Path.home()) / ".codex")]

    def build(self, request: StepRequest) -> Invocation:
        sandbox = str(request.options.get("sandbox") or "workspace-write")  # read-only: reviews
        argv = ["codex", "exec", "--json", "--sandbox", sandbox]
        argv.append("--skip-git-repo-check")
        if model := model_name(request):
            argv += ["-m", model]
        argv += extra_args(request)
        argv += ["-C", str(request.project_root)]
        if request.resume_session:  # `codex exec [OPTIONS] resume SESSION_ID [PROMPT]`
            argv += ["resume", request.resume_session]
        argv += ["--", agent_prompt(request)]  # clap's `--`
        return Invocation(argv=argv, env=dict(request.env), cwd=request.project_root)

    def parse(self, request: StepRequest, proc: ProcessResult) -> ToolResult:
        events = read_events(read_stdout(request, proc), request.project_root.resolve())
        problem = events.turn_failed or (events.errors[-1] if events.errors else None)
        if proc.timed_out or (proc.exit_code != 0 and problem is None):
            result = failed_process(proc)
        elif events.turn_failed is not None or proc.exit_code != 0:
            text = "\n".join([*events.errors, events.turn_failed or ""])
            result = ToolResult(
                success=False,
                exit_code=proc.exit_code,
                message=f"codex: {problem}"[:500],
                failure_class=codex_class(text, proc.exit_code),
                retry_after_s=retry_after_seconds(text),
                output_tail=tail(proc),
            )
        else:
            result = ToolResult(
                success=True,
                exit_code=0,
                message=f"codex: {events.turns} turn(s)",
                output_tail=tail(proc),
            )
        result.files_changed = tuple(dict.fromkeys([*events.files, *written_outputs(request)]))
        if events.turns:
            result.model = model_name(request) or configured_model(request.env)
            if result.model is None:  # no -m, no config.toml: codex ran its own default
                result.model = CLI_DEFAULT_MODELS["codex"][0]
                result.message += (
                    f"; model {result.model} assumed ({CLI_DEFAULT_MODELS['codex'][1]})"
                )
            result.tokens_in, result.tokens_out = events.tokens_in, events.tokens_out
            if events.tokens_in is None or events.tokens_out is None:
                note = "its token figures are not numbers: tokens and cost unknown"
                result.cost_source = UNPRICED
            else:
                estimate = self.prices.estimate(result.model, events.tokens_in, events.tokens_out)
                result.cost_usd = estimate.cost_usd
                result.cost_source = "price_table" if estimate.cost_usd is not None else UNPRICED
                note = estimate.note
            result.message = f"{result.message}; {note}"
        return check_outputs(request, result, "codex")
