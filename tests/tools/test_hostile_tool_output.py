"""A tool's output as the attacker: a retry-after of years or of 400 digits, figures in its
JSON that are not numbers. `uet run` with the fake CLIs: the wait is capped, an unreadable
figure is unknown, and the attempt ends with what really happened."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from uet_doit.testing import use_fake_tools

from support import Project, attempt_rows, event_rows


@pytest.fixture
def fake_tools(
    project: Project, tmp_path_factory: pytest.TempPathFactory, monkeypatch: Any
) -> Path:
    """The fake AI CLIs first on PATH, no real key or fake switch left from outside."""
    outside = tmp_path_factory.mktemp("fakes")
    for name in list(os.environ):
        if name.startswith("UET_") or name.endswith("_API_KEY"):
            monkeypatch.delenv(name)
    use_fake_tools(outside, monkeypatch, home=False)
    monkeypatch.setenv("HOME", str(outside))
    project.write("notes.md", "some notes\n")
    return outside


def ai_bundle(tool: str, **resilience: Any) -> dict[str, Any]:
    step = {
        "step_id": "s1",
        "tool_profile_id": tool,
        "files": ["notes.md"],
        "create_files": ["out/summary.md"],
        "instruction": "Write the summary",
    }
    if resilience:
        step["resilience"] = resilience
    return {"bundle_id": "hostile", "workstreams": [{"ws_id": "W", "steps": [step]}]}


def uet_run(root: Path) -> subprocess.CompletedProcess[str]:
    """In a child with a deadline: a wait of years fails the test instead of stalling it."""
    return subprocess.run(
        [sys.executable, "-m", "uet_doit", "run", "bundle.yaml", "--reporter", "plain"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("asked", ["999999999", "9" * 400])
@pytest.mark.slow
def test_a_tools_retry_after_is_capped_by_max_delay(
    project: Project, fake_tools: Path, monkeypatch: pytest.MonkeyPatch, asked: str
) -> None:
    monkeypatch.setenv("FAKE_AIDER_MODE", "rate_limit")
    monkeypatch.setenv("FAKE_RETRY_AFTER", asked)
    retry = {"max_retries": 1, "initial_delay": 0, "max_delay": 0.2, "jitter": 0}
    project.bundle(ai_bundle("aider", **retry))
    result = uet_run(project.root)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and "rate_limit" in result.stdout
    waits = [e["seconds"] for e in event_rows(project, "retry_wait")]
    # a rate limit is requeued up to max(max_retries, 5) times (run/policy.py): every wait
    # is the capped one, never the 31 years asked for
    assert waits and set(waits) == {0.2}
    classes = [r["failure_class"] for r in attempt_rows(project)]
    assert classes == ["rate_limit"] * (len(waits) + 1)


@pytest.mark.parametrize(
    ("tool", "patch", "tokens_known", "cost_known"),
    [
        ("gemini", 'stats.models.*.tokens.prompt="lots"', False, False),
        ("gemini", "stats.models.*.tokens.candidates=1e999", False, False),
        ("gemini", "stats.models.*.tokens.prompt=[12000]", False, False),
        ("gemini", "stats.models=[1, 2]", False, False),  # no usage reported at all
        ("gemini", 'stats.tools.totalFail="many"', True, True),
        ("claude", 'modelUsage.*.costUSD="n/a"', True, True),
        ("claude", 'usage.input_tokens="lots"', False, True),
        ("claude", "usage.output_tokens=-5", False, True),
        ("claude", 'total_cost_usd="free"', True, False),
        ("codex", "usage.input_tokens=1e999", False, False),
        ("codex", 'item.changes="everything"', True, True),
    ],
)
def test_a_figure_that_is_not_a_number_is_unknown_and_the_attempt_succeeds(
    project: Project,
    fake_tools: Path,
    monkeypatch: pytest.MonkeyPatch,
    tool: str,
    patch: str,
    tokens_known: bool,
    cost_known: bool,
) -> None:
    monkeypatch.setenv("FAKE_JSON_PATCH", patch)
    if tool == "codex":
        (fake_tools / ".codex").mkdir()
        (fake_tools / ".codex" / "config.toml").write_text('model = "gpt-5-codex"\n')
    project.bundle(ai_bundle(tool))
    result = project.uet("run", "bundle.yaml", "--reporter", "plain")
    assert result.code == 0, result.out + result.err
    assert "PythonAction Error" not in result.out + result.err
    [row] = attempt_rows(project)
    assert row["outcome"] == "succeeded"
    assert (None not in (row["tokens_in"], row["tokens_out"])) == tokens_known
    assert (row["cost_usd"] is not None) == cost_known
    assert project.read("out/summary.md").startswith(f"# written by fake {tool}")
    again = project.uet("run", "bundle.yaml", "--reporter", "plain")
    assert again.code == 0 and len(attempt_rows(project)) == 1  # done, nothing to adopt


def test_aider_figures_that_are_no_numbers_are_unknown() -> None:
    from uet_doit.tools.adapters.aider import parse_token_count, read_report

    assert parse_token_count("1" * 400) is None and parse_token_count("1.2.3k") is None
    report = read_report(
        "Tokens: 1.2.3k sent, 150 received. Cost: $0.0.1 message, $0.01 session.\n"
    )
    assert (report.calls, report.tokens_in, report.tokens_out, report.cost_usd) == (
        1,
        None,
        150,
        None,
    )


def test_output_an_adapter_did_not_foresee_fails_the_attempt_with_the_reason(
    tmp_path: Path,
) -> None:
    from uet_doit.tools.adapters.base import Invocation, StepRequest, ToolAdapter, ToolResult
    from uet_doit.tools.process import ProcessResult

    class Brittle(ToolAdapter):
        name = "brittle"

        def build(self, request: StepRequest) -> Invocation:
            raise NotImplementedError

        def parse(self, request: StepRequest, proc: ProcessResult) -> ToolResult:
            return ToolResult(success=True, tokens_in=int(proc.stdout))  # "lots": ValueError

    request = StepRequest(
        "s", "W", "brittle", "do it", (), (), tmp_path, {}, 10.0,
        tmp_path / "r.json", tmp_path / "o", tmp_path / "e",
    )  # fmt: skip
    proc = ProcessResult(("brittle",), 0, "lots", "", 0.1)
    result = Brittle().read_result(request, proc)
    assert not result.success and result.exit_code == 0
    assert result.message.startswith("brittle: its output could not be read (invalid literal")
