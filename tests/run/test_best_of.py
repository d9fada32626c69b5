"""Best-of-N through `uet run` in a git repository with the fake tools: attempts at once,
each in its own worktree, one lands, the others are recorded as superseded with their cost."""

from __future__ import annotations

from typing import Any

import pytest
from git_support import bundle, calls, step_commits

from support import Project, attempt_rows


def best_of_step(**attempts: Any) -> dict[str, Any]:
    return {
        "step_id": "s1",
        "tool_profile_id": "claude",
        "context": {"create_files": ["out/summary.md"], "instruction": "Write the summary"},
        "attempts": attempts,
    }


@pytest.mark.slow  # a whole run of fake tools; the quick loop has its kin
def test_best_of_two_lands_the_cheapest_and_records_both_costs(repo: Project) -> None:
    bundle(repo, best_of_step(best_of=2, tools=["claude", "aider"], pick="cheapest"))
    result = repo.run()
    assert result.code == 0, result.out + result.err
    rows = {r["tool"]: r for r in attempt_rows(repo, "s1")}
    assert rows["aider"]["outcome"] == "succeeded"  # $0.0081 beats claude's $0.01623
    assert rows["claude"]["outcome"] == "superseded"
    assert rows["claude"]["cost_usd"] == pytest.approx(0.01623)
    assert rows["aider"]["cost_usd"] == pytest.approx(0.0081)
    [commit] = [c for c in step_commits(repo) if c.get("Uet-Step") == "s1"]
    assert commit["Uet-Tool"] == "aider"
    assert "written by fake aider" in repo.read("out/summary.md")
    # both ran, each in a worktree of its own
    cwds = {c["cwd"] for c in calls(repo)}
    assert len(cwds) == 2 and str(repo.root.resolve()) not in cwds
    status = repo.status()
    assert status["total_cost_usd"] == pytest.approx(0.01623 + 0.0081)
    [step] = status["steps"]
    assert (step["status"], step["attempts"]) == ("succeeded", 2)


def test_best_of_lands_the_one_that_passes(repo: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_CLAUDE_MODE", "no_write")  # claude "succeeds" without the file
    bundle(repo, best_of_step(best_of=2, tools=["claude", "aider"], pick="cheapest"))
    result = repo.run()
    assert result.code == 0, result.out + result.err
    outcomes = {r["tool"]: (r["outcome"], r["failure_class"]) for r in attempt_rows(repo, "s1")}
    assert outcomes["aider"] == ("succeeded", None)
    assert outcomes["claude"][0] == "failed"


@pytest.mark.slow  # a whole run of fake tools; the quick loop has its kin
def test_pick_first_stops_the_others_once_one_passes(
    repo: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_CLAUDE_MODE", "hang")  # alive, silent, for FAKE_SLEEP seconds
    monkeypatch.setenv("FAKE_SLEEP", "120")
    bundle(repo, best_of_step(best_of=2, tools=["claude", "aider"], pick="first"))
    result = repo.run()
    assert result.code == 0, result.out + result.err
    rows = {r["tool"]: r for r in attempt_rows(repo, "s1")}
    assert rows["aider"]["outcome"] == "succeeded"
    assert rows["claude"]["outcome"] == "superseded"
    assert rows["claude"]["message"].startswith("stopped: another attempt passed first")
