"""The four AI CLI adapters driven end to end against the fake tools (no network)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from uet_doit.testing import FakeTools, use_fake_tools
from uet_doit.tools.adapters.agent import agent_prompt
from uet_doit.tools.adapters.aider import AiderAdapter
from uet_doit.tools.adapters.base import StepRequest, ToolAdapter
from uet_doit.tools.adapters.claude import ClaudeAdapter
from uet_doit.tools.adapters.codex import CodexAdapter
from uet_doit.tools.adapters.gemini import GeminiAdapter
from uet_doit.tools.failures import FailureClass

ADAPTERS: dict[str, type[ToolAdapter]] = {
    "aider": AiderAdapter,
    "claude": ClaudeAdapter,
    "codex": CodexAdapter,
    "gemini": GeminiAdapter,
}
TOOLS = sorted(ADAPTERS)
NASTY = (
    "Say \"hi\" and 'bye'; run $(rm -rf /) and `whoami` with $HOME & ; | > x\n"
    "second line: naïve café — 日本語 ✓\n\tindented \\n not a newline"
)


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    use_fake_tools(tmp_path / "fakes", monkeypatch, home=False)
    monkeypatch.setenv("CODEX_HOME", str(tmp_path / "codex-home"))
    return dict(os.environ)


def make_request(
    tool: str,
    root: Path,
    env: dict[str, str],
    *,
    instruction: str = "Write the summary",
    files: tuple[str, ...] = ("notes.md",),
    create: tuple[str, ...] = ("out/summary.md",),
    model: str | None = None,
    options: dict[str, Any] | None = None,
    timeout: float = 30,
) -> StepRequest:
    project = root / "project"
    project.mkdir(exist_ok=True)
    (project / "notes.md").write_text("some notes\n", encoding="utf-8")
    logs = root / "logs" / tool
    return StepRequest(
        step_id="s1",
        ws_id="ws",
        tool=tool,
        instruction=instruction,
        files=files,
        create_files=create,
        project_root=project,
        env=env,
        timeout=timeout,
        result_file=logs / "result.json",
        stdout_path=logs / "stdout.log",
        stderr_path=logs / "stderr.log",
        model=model,
        options=options or {},
    )


def calls(root: Path) -> list[dict[str, Any]]:
    """What the fakes of the `env` fixture (tmp_path = `root`) were asked to do."""
    return FakeTools(root / "fakes").calls()


def test_argv_is_exactly_the_documented_headless_form(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin"}
    req = make_request("aider", tmp_path, env, model="gpt-4o", options={"edit_format": "diff"})
    argv = AiderAdapter().build(req).argv
    msg = str(req.stdout_path.with_suffix(".message.txt"))
    assert argv == [
        "aider", "--yes-always", "--no-git", "--no-pretty", "--no-stream", "--no-check-update",
        "--no-analytics", "--no-show-release-notes", "--model", "gpt-4o", "--edit-format",
        "diff", "--message-file", msg, "--", "notes.md", "out/summary.md",
    ]  # fmt: skip
    assert Path(msg).read_text(encoding="utf-8") == agent_prompt(req)
    assert AiderAdapter().build(req).env["COLUMNS"] == "200"
    bare = AiderAdapter().build(make_request("aider", tmp_path, env, options={"git": True}))
    assert "--no-git" not in bare.argv and "--model" not in bare.argv
    assert "--no-auto-commits" in bare.argv and "--no-dirty-commits" in bare.argv

    req = make_request("claude", tmp_path, env, model="sonnet", options={"max_turns": 5})
    inv = ClaudeAdapter().build(req)
    assert inv.argv == [
        "claude", "-p", "--output-format", "json", "--permission-mode", "acceptEdits",
        "--model", "sonnet", "--max-turns", "5", "--", agent_prompt(req),
    ]  # fmt: skip
    assert inv.env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] == "1"
    assert "CLAUDE_CODE_MAX_RETRIES" not in inv.env
    assert inv.stdin_data is None  # run_process then gives the child /dev/null
    retries = make_request("claude", tmp_path, env, options={"max_retries": 0})
    assert ClaudeAdapter().build(retries).env["CLAUDE_CODE_MAX_RETRIES"] == "0"

    req = make_request("codex", tmp_path, env, model="gpt-5-codex")
    assert CodexAdapter().build(req).argv == [
        "codex", "exec", "--json", "--sandbox", "workspace-write", "--skip-git-repo-check",
        "-m", "gpt-5-codex", "-C", str(req.project_root), "--", agent_prompt(req),
    ]  # fmt: skip

    req = make_request("gemini", tmp_path, env, model="gemini-2.5-pro")
    assert GeminiAdapter().build(req).argv == [
        "gemini", f"--prompt={agent_prompt(req)}", "--output-format", "json", "--skip-trust",
        "--approval-mode", "auto_edit", "-m", "gemini-2.5-pro",
    ]  # fmt: skip


def test_prompt_lists_files_and_never_starts_with_a_dash(tmp_path: Path) -> None:
    req = make_request("claude", tmp_path, {}, instruction="- do a\n- do b")
    prompt = agent_prompt(req)
    assert prompt.startswith("Task:\n- do a\n- do b\n")
    assert "Files to read:\n- notes.md" in prompt
    assert "Files to create or update:\n- out/summary.md" in prompt


@pytest.mark.parametrize("tool", TOOLS)
@pytest.mark.parametrize("instruction", [NASTY, "- starts like an option --model x"])
def test_instruction_reaches_the_tool_verbatim(
    tool: str, instruction: str, tmp_path: Path, env: dict[str, str]
) -> None:
    req = make_request(tool, tmp_path, env, instruction=instruction)
    result = ADAPTERS[tool]().execute(req)
    assert result.success, result.message
    [call] = calls(tmp_path)
    assert call["prompt"] == agent_prompt(req)
    assert instruction in call["prompt"]
    assert call["stdin"] == ""  # stdin closed: nothing appended to the prompt
    written = (req.project_root / "out/summary.md").read_text(encoding="utf-8")
    assert instruction in written


@pytest.mark.parametrize("tool", TOOLS)
def test_files_named_like_options_reach_the_tool_as_files(
    tool: str, tmp_path: Path, env: dict[str, str]
) -> None:
    """Validation refuses such names; the adapters still never let one become an option."""
    req = make_request(tool, tmp_path, env, files=("--help",), create=("--version",))
    (req.project_root / "--help").write_text("read me\n", encoding="utf-8")
    result = ADAPTERS[tool]().execute(req)
    assert result.success, result.message
    [call] = calls(tmp_path)
    args = call["argv"]
    if tool == "gemini":
        assert args[0].startswith("--prompt=") and "--help" not in args
    else:  # every file name or prompt comes after the end of the options
        end = args.index("--")
        assert "--help" not in args[:end] and "--version" not in args[:end]
    assert (req.project_root / "--version").exists()  # the fake wrote it as a file


EXPECTED_USAGE = {
    # tool: (cost_usd, cost_source, tokens_in, tokens_out, model)
    "aider": (0.0081, "reported", 2300, 150, "gpt-4o"),
    "claude": (0.01623, "reported", 4512, 250, "claude-sonnet-4-5-20250929"),
    "codex": (24763 * 1.25 / 1e6 + 122 * 10 / 1e6, "price_table", 24763, 122, "gpt-5-codex"),
    "gemini": (
        (900 * 0.1 + 20 * 0.4 + 12000 * 1.25 + 300 * 10) / 1e6,
        "price_table",
        12900,
        320,
        "gemini-2.5-pro",
    ),
}


@pytest.mark.parametrize("tool", TOOLS)
def test_success_reports_cost_tokens_and_files(
    tool: str, tmp_path: Path, env: dict[str, str]
) -> None:
    model = "gpt-5-codex" if tool == "codex" else None
    result = ADAPTERS[tool]().execute(make_request(tool, tmp_path, env, model=model))
    cost, source, tokens_in, tokens_out, expected_model = EXPECTED_USAGE[tool]
    assert result.success and result.exit_code == 0, result.message
    assert result.cost_usd == pytest.approx(cost)
    assert result.cost_source == source
    assert (result.tokens_in, result.tokens_out) == (tokens_in, tokens_out)
    assert result.model == expected_model
    assert "out/summary.md" in result.files_changed
    if source == "price_table":
        assert "cost from uet price table of " in result.message


@pytest.mark.parametrize("tool", TOOLS)
@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("rate_limit", FailureClass.RATE_LIMIT),
        ("auth", FailureClass.PERMANENT),
        ("server_error", FailureClass.TRANSIENT),
        ("no_write", FailureClass.MISSING_OUTPUT),
    ],
)
def test_failure_modes_are_classified(
    tool: str,
    mode: str,
    expected: FailureClass,
    tmp_path: Path,
    env: dict[str, str],
) -> None:
    env[f"FAKE_{tool.upper()}_MODE"] = mode
    result = ADAPTERS[tool]().execute(make_request(tool, tmp_path, env))
    assert not result.success
    assert result.failure_class is expected, result.message
    if tool == "aider" and mode != "no_write":
        assert result.exit_code == 0  # aider exits 0 after API errors
    if mode == "no_write":
        assert "out/summary.md" in result.message


@pytest.mark.parametrize("tool", TOOLS)
def test_crash_is_a_failure(tool: str, tmp_path: Path, env: dict[str, str]) -> None:
    env[f"FAKE_{tool.upper()}_MODE"] = "crash"
    result = ADAPTERS[tool]().execute(make_request(tool, tmp_path, env))
    assert not result.success and result.exit_code not in (0, None)


@pytest.mark.parametrize("tool", TOOLS)
def test_missing_executable_names_the_install_command(tool: str, tmp_path: Path) -> None:
    adapter = ADAPTERS[tool]()
    result = adapter.execute(make_request(tool, tmp_path, {"PATH": str(tmp_path)}))
    assert not result.success and result.failure_class is FailureClass.NOT_INSTALLED
    assert result.message == f"{tool} not found on PATH; install with: {adapter.install_hint}"


def test_flaky_tool_fails_then_succeeds(tmp_path: Path, env: dict[str, str]) -> None:
    env.update(FAKE_CLAUDE_MODE="flaky", FAKE_FLAKY_FAILS="1")
    first = ClaudeAdapter().execute(make_request("claude", tmp_path, env))
    second = ClaudeAdapter().execute(make_request("claude", tmp_path, env))
    assert first.failure_class is FailureClass.RATE_LIMIT
    assert second.success, second.message


def test_slow_tool_is_killed_at_the_timeout(tmp_path: Path, env: dict[str, str]) -> None:
    env.update(FAKE_CODEX_MODE="slow", FAKE_SLEEP="20")
    result = CodexAdapter().execute(make_request("codex", tmp_path, env, timeout=0.5))
    assert not result.success and result.failure_class is FailureClass.TIMEOUT


def test_aider_sums_every_call_and_ignores_a_harmless_traceback(
    tmp_path: Path, env: dict[str, str]
) -> None:
    env.update(FAKE_AIDER_CALLS="3", FAKE_TRACEBACK="1")
    result = AiderAdapter().execute(make_request("aider", tmp_path, env))
    assert result.success, result.message
    assert result.cost_usd == pytest.approx(3 * 0.0081)
    assert (result.tokens_in, result.tokens_out) == (6900, 450)


def test_aider_unknown_model_has_no_cost(tmp_path: Path, env: dict[str, str]) -> None:
    result = AiderAdapter().execute(make_request("aider", tmp_path, env, model="unknown-llm"))
    assert result.success and result.cost_usd is None and result.tokens_in == 2300
    assert "no price for model 'unknown-llm'" in result.message


def test_aider_bad_option_is_permanent(tmp_path: Path, env: dict[str, str]) -> None:
    req = make_request("aider", tmp_path, env, options={"args": ["--bogus"]})
    result = AiderAdapter().execute(req)
    assert result.exit_code == 2 and result.failure_class is FailureClass.PERMANENT
    assert "unrecognized arguments: --bogus" in result.message


def test_claude_permission_denial_is_a_failure(tmp_path: Path, env: dict[str, str]) -> None:
    req = make_request("claude", tmp_path, env, options={"permission_mode": "default"})
    result = ClaudeAdapter().execute(req)
    assert not result.success and result.failure_class is FailureClass.PERMANENT
    assert "permission mode" in result.message and "Write" in result.message


def test_claude_turn_limit(tmp_path: Path, env: dict[str, str]) -> None:
    result = ClaudeAdapter().execute(
        make_request("claude", tmp_path, env, options={"max_turns": 1})
    )
    assert not result.success and "turn limit" in result.message
    assert result.cost_usd == pytest.approx(0.01623)


def test_codex_unknown_model_has_no_cost_but_tokens(tmp_path: Path, env: dict[str, str]) -> None:
    result = CodexAdapter().execute(make_request("codex", tmp_path, env, model="my-local-model"))
    assert result.success and result.cost_usd is None and result.cost_source == "unpriced"
    assert result.tokens_in == 24763 and "no price for model 'my-local-model'" in result.message


def test_codex_uses_the_model_of_its_config(tmp_path: Path, env: dict[str, str]) -> None:
    home = Path(env["CODEX_HOME"])
    home.mkdir()
    (home / "config.toml").write_text('model = "gpt-5-mini"\n', encoding="utf-8")
    result = CodexAdapter().execute(make_request("codex", tmp_path, env))
    assert result.model == "gpt-5-mini"
    assert result.cost_usd == pytest.approx(24763 * 0.25 / 1e6 + 122 * 2 / 1e6)


def test_gemini_single_model_when_named(tmp_path: Path, env: dict[str, str]) -> None:
    req = make_request("gemini", tmp_path, env, model="gemini-2.5-flash")
    result = GeminiAdapter().execute(req)
    assert result.model == "gemini-2.5-flash" and result.tokens_in == 12000
    assert result.cost_usd == pytest.approx((12000 * 0.3 + 300 * 2.5) / 1e6)
