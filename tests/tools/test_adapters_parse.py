"""Reading each AI CLI's output: the measured formats of ai-tools.md, fed in directly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from uet_doit.tools.adapters.aider import AiderAdapter, parse_token_count, read_report
from uet_doit.tools.adapters.base import StepRequest
from uet_doit.tools.adapters.claude import ClaudeAdapter
from uet_doit.tools.adapters.codex import CodexAdapter, codex_class
from uet_doit.tools.adapters.gemini import GeminiAdapter, error_json
from uet_doit.tools.failures import FailureClass
from uet_doit.tools.process import ProcessResult


def request(tmp_path: Path, create: tuple[str, ...] = ()) -> StepRequest:
    return StepRequest(
        step_id="s",
        ws_id="w",
        tool="t",
        instruction="do",
        files=(),
        create_files=create,
        project_root=tmp_path,
        env={},
        timeout=60,
        result_file=tmp_path / "r.json",
        stdout_path=tmp_path / "missing-stdout.log",  # absent: the adapters use proc.stdout
        stderr_path=tmp_path / "stderr.log",
    )


def proc(
    code: int | None, stdout: str = "", stderr: str = "", timed_out: bool = False
) -> ProcessResult:
    return ProcessResult(("x",), code, stdout, stderr, 0.1, timed_out)


@pytest.mark.parametrize(
    ("text", "value"), [("950", 950), ("2.3k", 2300), ("12k", 12000), ("1500k", 1500000)]
)
def test_aider_token_figures(text: str, value: int) -> None:
    assert parse_token_count(text) == value


def test_aider_cost_lines_with_cache_parts_and_without_cost() -> None:
    out = "\n".join(
        [
            "Model: anthropic/claude-sonnet-4-5 with diff edit format",
            "Tokens: 12k sent, 1.5k cache write, 8.1k cache hit, 2.3k received. "
            "Cost: $0.05 message, $0.05 session.",
            "Tokens: 950 sent, 20 received. Cost: $0.00016 message, $0.05 session.",
            "Tokens: 1.2k sent, 80 received.",
            "Applied edit to docs/a.md",
        ]
    )
    report = read_report(out)
    assert report.calls == 3 and report.priced_calls == 2
    assert report.cost_usd == pytest.approx(0.05016)
    assert (report.tokens_in, report.tokens_out) == (14150, 2400)
    assert report.model == "anthropic/claude-sonnet-4-5"
    assert report.edited == ["docs/a.md"]


def test_aider_error_then_successful_retry_is_a_success(tmp_path: Path) -> None:
    out = (
        "litellm.RateLimitError: RateLimitError: slow down\n"
        "The API provider has rate limited you. Try again later or check your quotas.\n"
        "Retrying in 0.2 seconds...\n"
        "Tokens: 1k sent, 10 received. Cost: $0.01 message, $0.01 session.\n"
    )
    result = AiderAdapter().parse(request(tmp_path), proc(0, out))
    assert result.success and result.cost_usd == pytest.approx(0.01)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("litellm.ContextWindowExceededError: litellm.BadRequestError: too long", "context"),
        ("litellm.NotFoundError: model not found", "permanent"),
        ("litellm.BadRequestError: bad", "permanent"),
        ("litellm.APIConnectionError: Connection error.", "transient"),
        ("The API provider's servers are down or overloaded.", "transient"),
        ("The API provider is not able to authenticate you. Check your API key.", "permanent"),
    ],
)
def test_aider_api_errors_with_exit_zero(tmp_path: Path, line: str, expected: str) -> None:
    result = AiderAdapter().parse(request(tmp_path), proc(0, f"Aider v0.86.2\n{line}\n"))
    assert not result.success and result.exit_code == 0
    assert result.failure_class is not None and result.failure_class.value.startswith(expected)


def test_aider_echoed_error_text_mid_line_is_not_an_error(tmp_path: Path) -> None:
    out = "> please handle litellm.RateLimitError: gracefully\nTokens: 1k sent, 1 received.\n"
    assert AiderAdapter().parse(request(tmp_path), proc(0, out)).success


def test_aider_traceback_on_stderr_with_exit_zero_is_not_a_failure(tmp_path: Path) -> None:
    err = "Traceback (most recent call last):\nValueError: Invalid file descriptor: -1\n"
    result = AiderAdapter().parse(request(tmp_path), proc(0, "Applied edit to a.md\n", err))
    assert result.success


def test_aider_empty_create_file_is_missing_output(tmp_path: Path) -> None:
    (tmp_path / "new.md").write_text("", encoding="utf-8")  # aider created it empty
    result = AiderAdapter().parse(request(tmp_path, ("new.md",)), proc(0, "Aider v0.86.2\n"))
    assert result.failure_class is FailureClass.MISSING_OUTPUT


def claude_line(**fields: object) -> str:
    data: dict[str, object] = {
        "type": "result",
        "subtype": "success",
        "is_error": False,
        "result": "ok",
        "total_cost_usd": 0.5,
        "usage": {"input_tokens": 1, "output_tokens": 2},
        "modelUsage": {"claude-haiku-4-5": {"costUSD": 0.1}, "claude-opus-4-5": {"costUSD": 0.4}},
        "permission_denials": [],
    }
    data.update(fields)
    return "some warning\n" + json.dumps(data) + "\n"


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (401, FailureClass.PERMANENT),
        (403, FailureClass.PERMANENT),
        (429, FailureClass.RATE_LIMIT),
        (500, FailureClass.TRANSIENT),
        (529, FailureClass.TRANSIENT),
    ],
)
def test_claude_api_error_status(tmp_path: Path, status: int, expected: FailureClass) -> None:
    out = claude_line(is_error=True, api_error_status=status, result="API Error")
    result = ClaudeAdapter().parse(request(tmp_path), proc(1, out))
    assert result.failure_class is expected and str(status) in result.message


def test_claude_success_picks_the_costliest_model(tmp_path: Path) -> None:
    result = ClaudeAdapter().parse(request(tmp_path), proc(0, claude_line()))
    assert result.success and result.model == "claude-opus-4-5" and result.cost_usd == 0.5


def test_claude_budget_and_non_json(tmp_path: Path) -> None:
    budget = ClaudeAdapter().parse(
        request(tmp_path), proc(1, claude_line(subtype="error_max_budget_usd"))
    )
    assert budget.failure_class is FailureClass.BUDGET
    garbage = ClaudeAdapter().parse(request(tmp_path), proc(0, "Not logged in · Please run /login"))
    assert not garbage.success and garbage.failure_class is FailureClass.PERMANENT


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("unexpected status 401 Unauthorized: bad key", FailureClass.PERMANENT),
        ("exceeded retry limit, last status: 429 Too Many Requests", FailureClass.RATE_LIMIT),
        ("exceeded retry limit, last status: 502 Bad Gateway", FailureClass.TRANSIENT),
        ("We\u2019re currently experiencing high demand", FailureClass.TRANSIENT),
    ],
)
def test_codex_error_classes(text: str, expected: FailureClass) -> None:
    assert codex_class(text, 1) is expected


def test_codex_turn_failed_keeps_tokens_of_earlier_turns(tmp_path: Path) -> None:
    events = [
        {"type": "turn.completed", "usage": {"input_tokens": 100, "output_tokens": 5}},
        {"type": "error", "message": "Reconnecting... 1/5 (429 Too Many Requests)"},
        {"type": "turn.failed", "error": {"message": "429 Too Many Requests"}},
    ]
    out = "\n".join(json.dumps(e) for e in events)
    result = CodexAdapter().parse(request(tmp_path), proc(1, out))
    assert result.failure_class is FailureClass.RATE_LIMIT and result.tokens_in == 100


def test_gemini_error_json_after_a_stack_trace() -> None:
    err = 'Error\n    at x (y.js:1:1)\n{\n  "session_id": "s",\n  "error": {"code": 429}\n}'
    assert error_json(err) == {"code": 429}


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (144, FailureClass.PERMANENT),
        (145, FailureClass.PERMANENT),
        (173, FailureClass.RATE_LIMIT),
        (244, FailureClass.TRANSIENT),
        (41, FailureClass.PERMANENT),
        (52, FailureClass.PERMANENT),
        (55, FailureClass.PERMANENT),
        (130, FailureClass.INTERRUPTED),
    ],
)
def test_gemini_exit_codes(tmp_path: Path, code: int, expected: FailureClass) -> None:
    result = GeminiAdapter().parse(request(tmp_path), proc(code, "", "stack trace"))
    assert result.failure_class is expected and result.exit_code == code


def test_gemini_refused_tool_calls_and_missing_output(tmp_path: Path) -> None:
    out = json.dumps({"response": "could not", "stats": {"models": {}, "tools": {"totalFail": 2}}})
    result = GeminiAdapter().parse(request(tmp_path, ("a.md",)), proc(0, out))
    assert result.failure_class is FailureClass.MISSING_OUTPUT
    assert "2 tool call(s) failed" in result.message


def test_timeouts_are_timeouts(tmp_path: Path) -> None:
    for adapter in (AiderAdapter(), ClaudeAdapter(), CodexAdapter(), GeminiAdapter()):
        result = adapter.parse(request(tmp_path), proc(None, timed_out=True))
        assert result.failure_class is FailureClass.TIMEOUT


def test_gemini_result_after_a_warning_line(tmp_path: Path) -> None:
    body = {"response": "ok", "stats": {"models": {"gemini-2.5-pro": {"tokens": {"prompt": 10}}}}}
    out = "Loaded cached credentials.\n" + json.dumps(body, indent=2)
    result = GeminiAdapter().parse(request(tmp_path), proc(0, out))
    assert result.success and result.tokens_in == 10
