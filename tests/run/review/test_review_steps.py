"""`review: {steps: true}` through `uet run`: each step's change judged before it lands; a
rejection goes back to the step's tool with the reviewer's reasons."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from git_support import DOC, bundle, calls, edit_step, make_repo, step, step_commits

from support import Project, attempt_rows, event_rows

#: reviewed steps in git worktrees, each a whole run: `pytest -m "not slow"` leaves this module out
pytestmark = pytest.mark.slow


def write_step(step_id: str = "top") -> dict[str, object]:
    """An aider step writing a new file (its content is the prompt: a fix differs)."""
    context = {"create_files": ["docs/adr.md"], "instruction": "Write ADR 1"}
    return {"step_id": step_id, "tool_profile_id": "aider", "context": context}


def reviewed(**review: object) -> dict[str, object]:
    return {"review": {"tool": "claude", "steps": True, **review}, "resilience": {"max_retries": 0}}


def test_a_rejected_step_is_fixed_with_the_reasons_and_lands_reviewed(
    repo: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_VERDICTS", "unmet,met")
    monkeypatch.setenv("FAKE_EVIDENCE", "LINE ONE should be lower case")
    bundle(repo, write_step(), **reviewed())
    result = repo.run()
    assert result.code == 0, result.out + result.err
    assert step(repo, "top")["attempt_classes"] == ["review_rejected", None]
    aider = [c for c in calls(repo) if c["tool"] == "aider"]
    assert len(aider) == 2
    assert "A reviewer rejected your change" not in aider[0]["prompt"]
    assert "A reviewer rejected your change. Fix what it found:" in aider[1]["prompt"]
    assert "LINE ONE should be lower case" in aider[1]["prompt"]
    # the reviewer saw the change as a diff against the tip, and changed nothing
    reviews = [c for c in calls(repo) if c["tool"] == "claude"]
    assert len(reviews) == 2
    assert "+++ b/docs/adr.md\n" in reviews[0]["prompt"]
    assert "+Write ADR 1" in reviews[0]["prompt"]
    assert "--permission-mode" in reviews[0]["argv"] and "plan" in reviews[0]["argv"]
    (commit,) = step_commits(repo)
    assert commit["Uet-Reviewed-By"] == "claude claude-sonnet-4-5-20250929"  # as it reported
    assert commit["Uet-Attempt"] == "2"
    assert "A reviewer rejected your change" in repo.read("docs/adr.md")
    rows = attempt_rows(repo, "top.review")
    assert [(r["outcome"], r["ws_id"]) for r in rows] == [("succeeded", "W")] * 2
    verdicts = [e["met"] for e in event_rows(repo, "reviewed")]
    assert verdicts == [False, True]
    status = repo.status()  # reviews are attempts, not steps of the plan
    assert [s["step_id"] for s in status["steps"]] == ["top"]
    assert (status["completed_count"], status["total_count"]) == (1, 1)
    assert status["total_cost_usd"] == pytest.approx(2 * 0.0081 + 2 * 0.01623)  # + reviews


def test_a_step_rejected_past_its_fix_attempts_fails_and_nothing_lands(
    repo: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_VERDICTS", "unmet")
    bundle(
        repo, edit_step("top", "doc.md", "line1\n", "LINE ONE\n"), **reviewed(max_fix_attempts=1)
    )
    result = repo.run()
    assert result.code == 1
    top = step(repo, "top")
    assert top["status"] == "failed"
    assert top["attempt_classes"] == ["review_rejected", "review_rejected"]
    assert (
        "the reviewer (claude claude-sonnet-4-5-20250929) rejected the change" in top["last_error"]
    )
    assert step_commits(repo) == []
    assert repo.read("doc.md") == DOC


def test_no_verdict_fails_the_step_without_a_fix_round(
    repo: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_VERDICTS", "malformed")
    bundle(repo, edit_step("top", "doc.md", "line1\n", "LINE ONE\n"), **reviewed())
    result = repo.run()
    assert result.code == 1
    top = step(repo, "top")
    assert top["attempt_classes"] == ["no_verdict"]
    assert "gave no verdict" in top["last_error"]
    assert step_commits(repo) == []


def test_a_rerun_with_nothing_changed_calls_no_reviewer(repo: Project) -> None:
    bundle(repo, edit_step("top", "doc.md", "line1\n", "LINE ONE\n"), **reviewed())
    assert repo.run().code == 0
    assert repo.run().code == 0
    reviews = [c for c in calls(repo) if c["tool"] == "claude"]
    assert len(reviews) == 1


def test_a_step_level_review_wins_over_the_workstreams(
    project: Project, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outside git the step runs in place: the reviewer reads the files as the step left them."""
    repo = make_repo(project, tmp_path_factory.mktemp("o"), monkeypatch)
    (Path(repo.root) / ".git").rename(repo.root / "not-git")
    monkeypatch.setenv("FAKE_VERDICTS", "met")
    project.bundle(
        {
            "bundle_id": "s",
            "review": {"tool": "codex", "steps": True},
            "workstreams": [
                {
                    "ws_id": "W",
                    "review": {"steps": False},
                    "steps": [
                        edit_step(
                            "top",
                            "doc.md",
                            "line1\n",
                            "LINE ONE\n",
                            review={"steps": True, "tool": "gemini"},
                        ),
                        edit_step("bottom", "a.md", "alpha", "ALPHA"),
                    ],
                }
            ],
        }
    )
    assert project.uet("run", "bundle.yaml").code == 0
    reviews = [c for c in calls(project) if c["tool"] in ("codex", "gemini")]
    assert [c["tool"] for c in reviews] == ["gemini"]
    assert "LINE ONE" in reviews[0]["prompt"]
    assert "--approval-mode" in reviews[0]["argv"] and "plan" in reviews[0]["argv"]


def test_parallel_reviewed_steps_each_land_with_their_own_review(repo: Project) -> None:
    steps = [
        edit_step("one", "a.md", "alpha", "ALPHA"),
        edit_step("two", "b.md", "beta", "BETA"),
        edit_step("three", "notes.md", "some", "SOME"),
    ]
    bundle(repo, *steps, **reviewed())
    result = repo.run("-n", "3")
    assert result.code == 0, result.out + result.err
    commits = {c["Uet-Step"]: c for c in step_commits(repo)}
    assert sorted(commits) == ["one", "three", "two"]
    assert all(c["Uet-Reviewed-By"].startswith("claude ") for c in commits.values())
    reviews = [c for c in calls(repo) if c["tool"] == "claude"]
    assert sorted(
        r["prompt"].count("+ALPHA") + 2 * r["prompt"].count("+BETA") for r in reviews
    ) == [0, 1, 2]


@pytest.mark.slow
def test_a_reviewer_timing_out_is_no_verdict_and_costs_are_counted(
    repo: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_CLAUDE_MODE", "slow")
    monkeypatch.setenv("FAKE_SLEEP", "30")
    bundle(repo, write_step(), **reviewed(timeout_seconds=0.5))
    result = repo.run()
    assert result.code == 1
    top = step(repo, "top")
    assert top["attempt_classes"] == ["no_verdict"]
    assert "no verdict" in top["last_error"] and "timeout" in top["last_error"]
    (review,) = attempt_rows(repo, "top.review")
    assert review["failure_class"] == "timeout"
    cost = json.loads(repo.uet("cost", "--by", "workstream", "--json").out)
    (ws_cost,) = cost["run"]
    assert ws_cost["attempts"] == 2  # the step's attempt and its review's
    # aider's is known; the killed review reported none: unknown, never counted as $0
    assert ws_cost["known_cost_usd"] == pytest.approx(0.0081)
    assert ws_cost["cost_usd"] is None and ws_cost["unknown_cost_attempts"] == 1


def test_a_criterion_reviewer_is_shown_the_changes_the_steps_landed(repo: Project) -> None:
    plan = {
        "bundle_id": "iso",
        "review": {"tool": "claude"},
        "workstreams": [
            {
                "ws_id": "W",
                "steps": [edit_step("top", "doc.md", "line1\n", "LINE ONE\n")],
                "completion_criteria": ["The first line is upper case"],
            }
        ],
    }
    repo.bundle(plan)
    result = repo.run()
    assert result.code == 0, result.out + result.err
    (review,) = [c for c in calls(repo) if c["tool"] == "claude"]
    assert "Landed change:\n" in review["prompt"]
    assert "-line1\n+LINE ONE" in review["prompt"]
    assert repo.run().code == 0  # nothing changed: the verdict is kept
    assert len([c for c in calls(repo) if c["tool"] == "claude"]) == 1


#: a tool in its worktree (.uet/worktrees/<run>/<step>.<n>) appending to the project's git config
TAMPER = "c = Path.cwd().parents[3] / '.git' / 'config'\nc.write_text(c.read_text() + '#\\n')\n"


@pytest.mark.parametrize(
    ("env", "cls", "shown"),
    [
        ({"FAKE_WRITE_ALSO": "secrets/stray.txt"}, "scope_violation", "secrets/stray.txt"),
        (
            {"FAKE_RUN_ALSO": "os.remove('doc.md')\nos.symlink('/etc/hostname', 'doc.md')\n"},
            "scope_violation",
            "doc.md -> /etc/hostname",
        ),
        ({"FAKE_RUN_ALSO": TAMPER}, "tampered", "config"),
    ],
    ids=["outside", "escaping-link", "tampered"],
)
def test_a_change_refused_anyway_is_refused_before_any_review_is_paid(
    repo: Project, env: dict[str, str], cls: str, shown: str
) -> None:
    edit = edit_step("top", "doc.md", "line1\n", "LINE ONE\n", env=env, sandbox="none")
    bundle(repo, edit, **reviewed())
    result = repo.run()
    assert result.code == 1
    top = step(repo, "top")
    assert top["attempt_classes"] == [cls]
    assert shown in top["last_error"]
    assert [c for c in calls(repo) if c["tool"] == "claude"] == []
    assert attempt_rows(repo, "top.review") == []
    assert event_rows(repo, "reviewed") == []
    cost = json.loads(repo.uet("cost", "--by", "workstream", "--json").out)
    (ws_cost,) = cost["run"]
    assert ws_cost["attempts"] == 1  # the step's own; no review attempt
    assert step_commits(repo) == []
    assert repo.read("doc.md") == DOC
