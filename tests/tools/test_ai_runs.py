"""AI steps end to end: `uet run` with the fake aider, claude, codex and gemini (no network).

Covers the tool call (exact argv, the instruction verbatim), cost and tokens in the state,
retry of rate limits and not of auth errors, the install hint of a missing tool, fallback
along a route, `auto` routing, custom adapters, `max_parallel` slots, and API keys kept out
of everything uet writes or prints.
"""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from uet_doit.testing import FakeTools, use_fake_tools

from support import Project, attempt_rows, event_rows, one_ws, quick_first

TOOLS = ("aider", "claude", "codex", "gemini")
INSTALL_HINTS = {
    "aider": "pipx install aider-chat",
    "claude": "npm install -g @anthropic-ai/claude-code",
    "codex": "npm install -g @openai/codex",
    "gemini": "npm install -g @google/gemini-cli",
}
#: tool -> (cost_usd or None when priced from the table, tokens_in, tokens_out)
USAGE: dict[str, tuple[float | None, int, int]] = {
    "aider": (0.0081, 2300, 150),
    "claude": (0.01623, 12 + 1500 + 3000, 250),
    "codex": (None, 24763, 122),
    "gemini": (None, 900 + 12000, 20 + 300),
}
FAST_RETRY = {"max_retries": 3, "initial_delay": 0, "max_delay": 0, "jitter": 0}
#: quotes, command substitution, backticks, newlines, a tab, a backslash and non-ASCII
NASTY = (
    "Say \"hi\" and 'bye'; run $(touch pwned-dollar) and `touch pwned-tick` with $HOME & ; |\n"
    "second line: naïve café — 日本語 ✓\n\tindented \\n not a newline"
)
SECRETS = {
    "ANTHROPIC_API_KEY": "sk-ant-test-SECRET123456",
    "OPENAI_API_KEY": "sk-proj-test-SECRET654321",
    "GEMINI_API_KEY": "gm-test-SECRET-777777",  # not key-shaped: masked by its value only
}


@pytest.fixture
def fakes(
    project: Project, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> FakeTools:
    for name in SECRETS:
        monkeypatch.delenv(name, raising=False)
    # codex reports tokens only; the fake home's codex config names a model the table prices
    fakes = use_fake_tools(tmp_path_factory.mktemp("fakes"), monkeypatch)
    monkeypatch.setenv("FAKE_RETRY_AFTER", "0.01")
    project.write("notes.md", "some notes\n")
    return fakes


def ai_step(
    step_id: str,
    tool: str,
    instruction: str = "Write the summary",
    create: tuple[str, ...] = ("out/summary.md",),
    files: tuple[str, ...] = ("notes.md",),
    **extra: Any,
) -> dict[str, Any]:
    context = {"files": list(files), "create_files": list(create), "instruction": instruction}
    return {"step_id": step_id, "tool_profile_id": tool, "context": context, **extra}


def router(project: Project, config: dict[str, Any]) -> None:
    project.write("router_config.json", json.dumps(config))


def expected_argv(tool: str, prompt: str, root: Path, run_id: str, step_id: str) -> list[str]:
    """What each adapter's build() passes (argv[0], the tool itself, left out, as the fakes log)."""
    if tool == "aider":
        message = root / ".uet" / "runs" / run_id / "steps" / f"{step_id}.1.message.txt"
        scratch = root / ".uet" / "runs" / run_id / "scratch" / f"{step_id}.1"
        return [
            "--yes-always",
            "--no-git",
            "--no-pretty",
            "--no-stream",
            "--no-check-update",
            "--no-analytics",
            "--no-show-release-notes",
            # its history files go to the attempt's scratch folder, never into the project
            "--chat-history-file",
            str(scratch / ".aider.chat.history.md"),
            "--input-history-file",
            str(scratch / ".aider.input.history"),
            "--message-file",
            str(message),
            "--",
            "notes.md",
            "out/summary.md",
        ]
    if tool == "claude":
        return ["-p", "--output-format", "json", "--permission-mode", "acceptEdits", "--", prompt]
    if tool == "codex":
        head = ["exec", "--json", "--sandbox", "workspace-write", "--skip-git-repo-check"]
        return [*head, "-C", str(root), "--", prompt]
    tail = ["--output-format", "json", "--skip-trust", "--approval-mode", "auto_edit"]
    return [f"--prompt={prompt}", *tail]


# -- each tool ---------------------------------------------------------------------------


@pytest.mark.parametrize("tool", quick_first(TOOLS))
def test_ai_step_runs_with_exact_argv_verbatim_instruction_and_cost(
    project: Project, fakes: FakeTools, tool: str
) -> None:
    project.bundle(one_ws(ai_step("s1", tool, NASTY)))
    project.run_ok()
    status = project.status()
    [step] = status["steps"]
    assert (step["status"], step["tool"], step["attempts"]) == ("succeeded", tool, 1)
    assert "written by fake " + tool in project.read("out/summary.md")

    [call] = fakes.calls()
    root = project.root.resolve()
    prompt = (
        f"{NASTY}\n\nFiles to read:\n- notes.md\n\nFiles to create or update:\n- out/summary.md"
    )
    assert call["prompt"] == prompt  # quotes, $(...), backticks, newlines, non-ASCII: verbatim
    assert call["argv"] == expected_argv(tool, prompt, root, status["run_id"], "s1")
    assert call["cwd"] == str(root)
    assert not (project.root / "pwned-dollar").exists()
    assert not (project.root / "pwned-tick").exists()

    cost, tokens_in, tokens_out = USAGE[tool]
    assert step["cost_usd"] > 0 and status["total_cost_usd"] == step["cost_usd"]
    if cost is not None:
        assert step["cost_usd"] == pytest.approx(cost)
    [row] = attempt_rows(project, "s1")
    assert (row["tokens_in"], row["tokens_out"]) == (tokens_in, tokens_out)
    assert row["cost_source"] == ("reported" if cost is not None else "price_table")


def test_aider_in_git_mode_makes_no_calls_its_cost_lines_leave_out(
    project: Project, fakes: FakeTools
) -> None:
    """aider's commit-message calls are paid but not printed: uet turns them off (it writes
    the commit itself), so the recorded cost is every call aider made."""
    project.bundle(one_ws(ai_step("g", "aider", tool_options={"git": True})))
    project.run_ok()
    [call] = fakes.calls("aider")
    assert "--no-auto-commits" in call["argv"] and "--no-dirty-commits" in call["argv"]
    assert call["hidden_calls"] == 0
    assert project.status()["steps"][0]["cost_usd"] == pytest.approx(USAGE["aider"][0])


def test_aider_auto_commits_say_the_cost_is_a_lower_bound(
    project: Project, fakes: FakeTools
) -> None:
    project.bundle(one_ws(ai_step("c", "aider", tool_options={"auto_commits": True})))
    project.run_ok()
    [call] = fakes.calls("aider")
    assert "--no-auto-commits" not in call["argv"] and call["hidden_calls"] == 2
    [row] = attempt_rows(project, "c")
    assert "not in its Cost lines" in row["message"] and "lower bound" in row["message"]


@pytest.mark.parametrize("tool", quick_first(TOOLS))
def test_rate_limit_is_retried_until_the_tool_answers(
    project: Project, fakes: FakeTools, monkeypatch: pytest.MonkeyPatch, tool: str
) -> None:
    monkeypatch.setenv(f"FAKE_{tool.upper()}_MODE", "flaky")
    monkeypatch.setenv("FAKE_FLAKY_FAILS", "2")
    project.bundle(one_ws(ai_step("s1", tool, resilience=FAST_RETRY)))
    project.run_ok()
    [step] = project.status()["steps"]
    assert (step["status"], step["attempts"], step["failure_class"]) == ("succeeded", 3, None)
    assert [c["mode"] for c in fakes.calls()] == ["rate_limit", "rate_limit", "ok"]
    rows = attempt_rows(project, "s1")
    assert [r["failure_class"] for r in rows] == ["rate_limit", "rate_limit", None]


@pytest.mark.parametrize("tool", quick_first(TOOLS))
def test_auth_error_is_permanent_and_not_retried(
    project: Project, fakes: FakeTools, monkeypatch: pytest.MonkeyPatch, tool: str
) -> None:
    monkeypatch.setenv(f"FAKE_{tool.upper()}_MODE", "auth")
    project.bundle(one_ws(ai_step("s1", tool, resilience=FAST_RETRY)))
    result = project.uet("run", "bundle.yaml")
    assert result.code == 1, result.out + result.err
    [step] = project.status()["steps"]
    assert (step["status"], step["attempts"], step["failure_class"]) == ("failed", 1, "permanent")
    assert len(fakes.calls()) == 1


@pytest.mark.parametrize("tool", quick_first(TOOLS))
def test_missing_tool_fails_with_its_install_hint(
    project: Project, fakes: FakeTools, monkeypatch: pytest.MonkeyPatch, tool: str
) -> None:
    fakes.link(*[t for t in TOOLS if t != tool])
    project.bundle(one_ws(ai_step("s1", tool, resilience=FAST_RETRY)))
    result = project.uet("run", "bundle.yaml")
    assert result.code == 1
    hint = INSTALL_HINTS[tool]
    assert f"{tool} not found on PATH; install with: {hint}" in result.out + result.err
    [step] = project.status()["steps"]
    # a set-up problem, not the tool's failure: never retried, never counted by its breaker
    assert (step["attempts"], step["failure_class"]) == (1, "not_installed")
    assert hint in step["last_error"]
    assert fakes.calls() == []


# -- routing -----------------------------------------------------------------------------


def test_permanent_failure_falls_back_to_the_next_tool_of_the_route(
    project: Project, fakes: FakeTools, monkeypatch: pytest.MonkeyPatch
) -> None:
    router(project, {"routes": [{"task_kind": "docs", "tools": ["aider", "claude"]}]})
    monkeypatch.setenv("FAKE_AIDER_MODE", "auth")
    project.bundle(one_ws(ai_step("s1", "aider", task_kind="docs", resilience=FAST_RETRY)))
    project.run_ok()
    [step] = project.status()["steps"]
    assert (step["status"], step["tool"], step["attempts"]) == ("succeeded", "claude", 2)
    rows = attempt_rows(project, "s1")
    assert [(r["tool"], r["outcome"], r["failure_class"], r["fallback_from"]) for r in rows] == [
        ("aider", "failed", "permanent", None),
        ("claude", "succeeded", None, "aider"),
    ]
    assert event_rows(project, "fallback") == [
        {"step_id": "s1", "from_tool": "aider", "to_tool": "claude"}
    ]
    assert [c["tool"] for c in fakes.calls()] == ["aider", "claude"]
    assert "written by fake claude" in project.read("out/summary.md")


def test_auto_is_routed_by_task_kind_past_tools_not_installed(
    project: Project, fakes: FakeTools, monkeypatch: pytest.MonkeyPatch
) -> None:
    fakes.link("claude", "codex")  # aider is not installed
    routes = [
        {"task_kind": "docs", "tools": ["aider", "claude"]},
        {"task_kind": "code", "tools": ["codex", "gemini"]},
    ]
    router(project, {"routes": routes})
    project.bundle(
        one_ws(
            ai_step("docs", "auto", create=("docs.md",), task_kind="docs"),
            ai_step("code", "auto", create=("code.py",), task_kind="code"),
        )
    )
    project.run_ok()
    steps = {s["step_id"]: s for s in project.status()["steps"]}
    assert (steps["docs"]["tool"], steps["docs"]["status"]) == ("claude", "succeeded")
    assert (steps["code"]["tool"], steps["code"]["status"]) == ("codex", "succeeded")
    assert sorted(c["tool"] for c in fakes.calls()) == ["claude", "codex"]
    assert [r["tool"] for r in attempt_rows(project, "docs")] == ["claude"]


CUSTOM_MODULE = '''
import sys
from pathlib import Path

from uet_doit.tools.adapters.base import Invocation, ToolAdapter, ToolResult


class Scribe:
    """The guide's shape: execute(context) -> dict."""

    def execute(self, context):
        root = Path(context["project_root"])
        for name in context["create_files"]:
            (root / name).write_text("scribe: " + context["instruction"] + "\\n")
        return {"status": "success", "files_created": context["create_files"],
                "cost_usd": 0.25, "tokens_in": 10, "tokens_out": 5}


class Copier(ToolAdapter):
    """A real adapter: copies the input file to the output file in a child process."""

    name = "copier"

    def build(self, request):
        code = "import shutil, sys; shutil.copy(sys.argv[1], sys.argv[2])"
        argv = [sys.executable, "-c", code, request.files[0], request.create_files[0]]
        return Invocation(argv=argv, env=dict(request.env), cwd=request.project_root)

    def parse(self, request, proc):
        return ToolResult(success=proc.exit_code == 0, exit_code=proc.exit_code, cost_usd=0.5,
                          cost_source="reported")
'''


def test_custom_adapters_from_router_config_run_steps(
    project: Project, fakes: FakeTools, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = "uet_ai_runs_custom_tools"
    project.write(f"{module}.py", CUSTOM_MODULE)
    adapters = {
        "scribe": {"module": module, "class": "Scribe"},
        "copier": {"module": module, "class": "Copier"},
    }
    router(project, {"custom_adapters": adapters})
    monkeypatch.setattr(sys, "path", list(sys.path))  # the loader puts the project first
    project.bundle(
        one_ws(
            ai_step("scribed", "scribe", "Write it down", create=("scribed.md",)),
            ai_step("copied", "copier", create=("copied.md",)),
        )
    )
    try:
        project.run_ok()
    finally:
        sys.modules.pop(module, None)
    steps = {s["step_id"]: s for s in project.status()["steps"]}
    assert {k: (s["status"], s["tool"]) for k, s in steps.items()} == {
        "scribed": ("succeeded", "scribe"),
        "copied": ("succeeded", "copier"),
    }
    assert project.read("scribed.md") == "scribe: Write it down\n"
    assert project.read("copied.md") == "some notes\n"
    assert steps["scribed"]["cost_usd"] == 0.25 and steps["copied"]["cost_usd"] == 0.5
    [row] = attempt_rows(project, "scribed")
    assert (row["tokens_in"], row["tokens_out"]) == (10, 5)


# -- slots -------------------------------------------------------------------------------


@pytest.mark.slow
def test_max_parallel_one_serialises_a_tool_across_worker_processes(
    project: Project, fakes: FakeTools, monkeypatch: pytest.MonkeyPatch
) -> None:
    router(project, {"tools": {"claude": {"max_parallel": 1}}})
    monkeypatch.setenv("FAKE_CLAUDE_MODE", "slow")
    monkeypatch.setenv("FAKE_SLEEP", "0.2")
    project.bundle(one_ws(*[ai_step(f"c{i}", "claude", create=(f"c{i}.md",)) for i in range(4)]))
    project.run_ok("-n", "4", "-P", "process")
    assert all(s["status"] == "succeeded" for s in project.status()["steps"])
    calls = sorted(fakes.calls("claude"), key=lambda c: c["start"])
    assert len(calls) == 4 and len({c["pid"] for c in calls}) == 4
    for before, after in itertools.pairwise(calls):
        assert after["start"] >= before["end"], "two claude runs overlapped"


# -- secrets -----------------------------------------------------------------------------


def test_api_keys_echoed_by_tools_never_reach_uet_state_or_output(
    project: Project, fakes: FakeTools, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("FAKE_MODE", "leak")  # an auth error that prints the key
    project.bundle(one_ws(*[ai_step(t, t, create=(f"{t}.md",)) for t in TOOLS]))
    result = project.uet("run", "bundle.yaml", "-c")
    assert result.code == 1
    calls = fakes.calls()
    assert sorted(c["tool"] for c in calls) == sorted(TOOLS)
    # the fakes did print their keys (masked or not): the check below is not vacuous
    log = "".join(
        Path(r["stderr_path"]).read_text() for t in TOOLS for r in attempt_rows(project, t)
    )
    assert log.count("request headers: {'authorization': 'Bearer ") >= len(TOOLS)
    steps = project.status()["steps"]
    assert all(s["failure_class"] == "permanent" for s in steps)
    status_text = project.uet("status").out + json.dumps(steps)
    values = [v.encode() for v in SECRETS.values()]
    leaks = []
    for path in sorted((project.root / ".uet").rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            leaks += [f"{path.relative_to(project.root)}: {v!r}" for v in values if v in data]
    for name, text in (("stdout", result.out), ("stderr", result.err), ("status", status_text)):
        leaks += [f"uet {name}: {v!r}" for v in values if v in text.encode()]
    assert leaks == [], "\n".join(leaks)


# -- stalls ------------------------------------------------------------------------------

STALL_RETRY = {"max_retries": 1, "initial_delay": 0, "max_delay": 0, "jitter": 0}


@pytest.mark.parametrize("tool", ["claude", "codex"])
@pytest.mark.slow
def test_a_stalled_ai_attempt_resumes_its_recorded_session(
    project: Project, fakes: FakeTools, monkeypatch: pytest.MonkeyPatch, tool: str
) -> None:
    monkeypatch.setenv(f"FAKE_{tool.upper()}_MODE", "hang")
    project.bundle(one_ws(ai_step("s1", tool, stall_timeout_seconds=1, resilience=STALL_RETRY)))
    res = project.uet("run", "bundle.yaml")
    assert res.code == 0, res.out + res.err
    first, second = attempt_rows(project, "s1")
    assert first["failure_class"] == "stalled"
    assert first["tool_session"]
    assert second["resumed_session"] == first["tool_session"]
    assert second["outcome"] == "succeeded"
    [call] = fakes.calls(tool)  # the hung run never finished, so only the resumed one logged
    argv = call["argv"]
    flag = "resume" if tool == "codex" else "--resume"
    assert argv[argv.index(flag) + 1] == first["tool_session"]
    assert call["prompt"].startswith("You were stopped because you showed no sign of progress")


@pytest.mark.slow
def test_a_stalled_gemini_without_a_session_id_starts_over(
    project: Project, fakes: FakeTools, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Gemini prints its session id only at the end: a hung one never printed it."""
    monkeypatch.setenv("FAKE_GEMINI_MODE", "hang")
    monkeypatch.setenv("FAKE_SLEEP", "4")  # the fake gives up on its own after that
    project.bundle(one_ws(ai_step("s1", "gemini", stall_timeout_seconds=1, resilience=STALL_RETRY)))
    project.uet("run", "bundle.yaml")
    rows = attempt_rows(project, "s1")
    assert [r["failure_class"] for r in rows] == ["stalled", "stalled"]
    assert all(r["resumed_session"] is None for r in rows)


# -- rate limits ---------------------------------------------------------------------------


@pytest.mark.slow
def test_a_429_storm_at_n8_shrinks_concurrency_and_no_step_fails(
    project: Project, fakes: FakeTools, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_CLAUDE_MODE", "flaky")
    monkeypatch.setenv("FAKE_FLAKY_FAILS", "10")  # the first 10 calls are rate limited
    retry = {"max_retries": 1, "initial_delay": 0, "max_delay": 0, "jitter": 0}
    steps = [
        ai_step(f"s{i}", "claude", create=(f"out/s{i}.md",), resilience=retry) for i in range(8)
    ]
    project.bundle(one_ws(*steps))
    project.run_ok("-n", "8")
    status = project.status()
    assert {s["status"] for s in status["steps"]} == {"succeeded"}
    limits = [e["limit"] for e in event_rows(project, "concurrency")]
    assert limits and min(limits) < 8  # halved at least once
    assert limits[0] == 4
    [anthropic] = status["concurrency"]
    assert anthropic["provider"] == "anthropic" and anthropic["limit"] == limits[-1]
    rate_limited = [c for c in fakes.calls("claude") if c.get("mode") == "rate_limit"]
    assert len(fakes.calls("claude")) >= 8 + len(rate_limited)


def test_provider_of_a_tool() -> None:
    from uet_doit.run.providers import provider_of

    assert provider_of("claude", None, {}) == "anthropic"
    assert provider_of("claude", None, {"ANTHROPIC_BASE_URL": "http://127.0.0.1:9/"}) == (
        "http://127.0.0.1:9"
    )
    assert provider_of("aider", "gpt-4o", {}) == "openai"
    assert provider_of("aider", "gemini/gemini-2.5-pro", {}) == "google"
    assert provider_of("mytool", None, {}) == "mytool"


def test_adaptive_limit_halves_and_grows_within_its_cap() -> None:
    from uet_doit.run.providers import AdaptiveLimit

    limit = AdaptiveLimit(cap=8)
    assert limit.limit == 8
    assert limit.rate_limited() and limit.limit == 4
    assert limit.rate_limited() and limit.rate_limited() and limit.limit == 1
    assert not limit.rate_limited()  # never below 1
    assert limit.succeeded() and limit.limit == 2  # one success in a row at limit 1
    assert not limit.succeeded() and limit.succeeded() and limit.limit == 3
    limit.limit = 8
    assert not any(limit.succeeded() for _ in range(20))  # never above the cap
