"""`claude`: Claude Code in print mode, read from its one-line JSON result.

Facts (Claude Code 2.1, ai-tools.md): API errors exit 1 but keep `subtype: success`, so
`is_error` and `api_error_status` decide; a turn limit has no `result` key; a write refused
by the permission mode is only visible in `permission_denials` (exit 0). stdin is appended
to the prompt unless it is closed, and the CLI computes `total_cost_usd` itself.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from uet_doit.tools.adapters.agent import (
    AgentAdapter,
    agent_prompt,
    check_outputs,
    child_env,
    extra_args,
    model_name,
    read_stdout,
    status_class,
    tail,
    written_outputs,
)
from uet_doit.tools.adapters.base import Invocation, StepRequest, ToolResult, failed_process
from uet_doit.tools.adapters.figures import dollars, mapping, total
from uet_doit.tools.adapters.sessions import planned_session
from uet_doit.tools.failures import FailureClass, classify, retry_after_seconds
from uet_doit.tools.process import ProcessResult


def result_json(stdout: str) -> dict[str, Any] | None:
    """The last `{"type": "result", ...}` line of stdout, if any."""
    for raw in reversed(stdout.strip().splitlines()):
        line = raw.strip()
        if not line.startswith("{"):
            continue
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if isinstance(data, dict) and data.get("type") == "result":
            return data
    return None


class ClaudeAdapter(AgentAdapter):
    name = "claude"
    executable = "claude"
    install_hint = "npm install -g @anthropic-ai/claude-code"
    resumes = plans_session = True

    def home_state(self, env: Mapping[str, str]) -> list[Path]:
        """Its config dir (sessions, todos, backups of its config; `CLAUDE_CONFIG_DIR`) and
        the native build's version locks (`$XDG_STATE_HOME/claude`)."""
        home = Path(env.get("HOME") or Path.home())
        state = Path(env.get("XDG_STATE_HOME") or home / ".local" / "state")
        return [_config_dir(env), state / "claude"]

    def home_files(self, env: Mapping[str, str]) -> dict[Path, str]:
        """`~/.claude.json`, which it rewrites on every run and cannot create in a read-only
        $HOME: made `{}` when missing (empty would be invalid JSON to it). Its lock folder
        and temp copy beside it stay refused: it then writes the file in place, as it does
        in its own sandbox. With `CLAUDE_CONFIG_DIR` the file is inside that folder."""
        if env.get("CLAUDE_CONFIG_DIR"):
            return {}
        return {Path(env.get("HOME") or Path.home()) / ".claude.json": "{}\n"}

    def build(self, request: StepRequest) -> Invocation:
        opts = request.options
        argv = ["claude", "-p", "--output-format", "json"]
        argv += ["--permission-mode", str(opts.get("permission_mode") or "acceptEdits")]
        if model := model_name(request):
            argv += ["--model", model]
        if opts.get("max_turns") is not None:
            argv += ["--max-turns", str(opts["max_turns"])]
        if opts.get("max_budget_usd") is not None:
            argv += ["--max-budget-usd", str(opts["max_budget_usd"])]
        if request.resume_session:
            argv += ["--resume", request.resume_session]
        elif request.stall_timeout:  # a stalled claude prints nothing: know its id before
            argv += ["--session-id", planned_session(request)]
        argv += extra_args(request)
        # the prompt last, after commander's `--`: never read as an option, and never
        # swallowed by a variadic option such as `--allowedTools Write Edit` in `args`
        argv += ["--", agent_prompt(request)]
        extra = {"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}
        if opts.get("max_retries") is not None:
            extra["CLAUDE_CODE_MAX_RETRIES"] = str(opts["max_retries"])
        return Invocation(argv=argv, env=child_env(request, extra), cwd=request.project_root)

    def parse(self, request: StepRequest, proc: ProcessResult) -> ToolResult:
        data = None if proc.timed_out else result_json(read_stdout(request, proc))
        if data is None:
            if proc.exit_code == 0 and not proc.timed_out:
                return failed_process(proc, "claude printed no JSON result")
            return failed_process(proc)
        result = ToolResult(success=False, exit_code=proc.exit_code, output_tail=tail(proc))
        self._add_usage(data, result)
        text = str(data.get("result") or "; ".join(map(str, data.get("errors") or [])))
        subtype = str(data.get("subtype") or "")
        denials = data.get("permission_denials") or []
        status = data.get("api_error_status")
        if subtype == "error_max_turns":
            result.failure_class = FailureClass.UNKNOWN
            result.message = f"claude hit its turn limit ({data.get('num_turns')} turns)"
        elif subtype == "error_max_budget_usd":
            result.failure_class = FailureClass.BUDGET
            result.message = "claude stopped at its --max-budget-usd limit"
        elif data.get("is_error") or isinstance(status, int):
            result.failure_class = (
                status_class(status) if isinstance(status, int) else classify(proc.exit_code, text)
            )
            status_text = f" ({status})" if status else ""
            result.message = f"claude API error{status_text}: {text[:500]}"
            result.retry_after_s = retry_after_seconds(text)
        elif denials:
            result.failure_class = FailureClass.PERMANENT
            result.message = (
                f"claude was refused {len(denials)} tool call(s) by its permission mode: "
                f"{_denied(denials)}; writes are allowed inside the project only"
            )
        elif subtype.startswith("error") or proc.exit_code != 0:
            result.failure_class = classify(proc.exit_code, text)
            result.message = f"claude failed ({subtype or f'exit {proc.exit_code}'}): {text[:500]}"
        else:
            result.success = True
            result.message = f"claude: {data.get('num_turns', '?')} turn(s)"
        result.files_changed = written_outputs(request)
        return check_outputs(request, result, "claude")

    @staticmethod
    def _add_usage(data: dict[str, Any], result: ToolResult) -> None:
        """Tokens and cost as reported; a figure that is not a number stays unknown."""
        usage = data.get("usage")
        if isinstance(usage, dict):
            result.tokens_in = total(
                usage.get("input_tokens"),
                usage.get("cache_creation_input_tokens"),
                usage.get("cache_read_input_tokens"),
            )
            result.tokens_out = total(usage.get("output_tokens"))
        cost = dollars(data.get("total_cost_usd"))
        if cost is not None:
            result.cost_usd, result.cost_source = cost, "reported"
        models = mapping(data.get("modelUsage"))
        if models:

            def spent(name: str) -> float:
                value = dollars(mapping(models[name]).get("costUSD"))
                return value if value is not None and math.isfinite(value) else 0.0

            result.model = str(max(models, key=spent))


def _denied(denials: list[Any]) -> str:
    names = []
    for item in denials[:5]:
        if isinstance(item, dict):
            target = (item.get("tool_input") or {}).get("file_path", "")
            names.append(f"{item.get('tool_name', '?')} {target}".strip())
        else:
            names.append(str(item))
    return ", ".join(names)


def _config_dir(env: Mapping[str, str]) -> Path:
    named = env.get("CLAUDE_CONFIG_DIR")
    return Path(named) if named else Path(env.get("HOME") or Path.home()) / ".claude"
