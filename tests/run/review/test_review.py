"""Reviews through `uet run` with the fake CLIs: sentence criteria judged by a reviewer, and
steps judged before they land (verdicts met, unmet, malformed, timeout)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from uet_doit.bundle.model import Bundle
from uet_doit.testing import FakeTools

from support import REPO, Project, attempt_rows, event_rows, quick_first, shell_step

REVIEWERS = ("claude", "codex", "gemini", "aider")
NO_RETRY = {"max_retries": 0}


@pytest.fixture
def calls(fake_tools: FakeTools) -> Callable[..., list[dict[str, Any]]]:
    return fake_tools.calls


def criteria_bundle(review: dict[str, Any], **ws: Any) -> dict[str, Any]:
    return {
        "bundle_id": "r",
        "resilience": NO_RETRY,
        "workstreams": [
            {
                "ws_id": "W",
                "review": review,
                "steps": [
                    shell_step(
                        "adr",
                        "mkdir -p docs; echo '# ADR 1' > docs/adr.md",
                        create_files=["docs/adr.md"],
                    )
                ],
                "completion_criteria": [
                    "One ADR created",
                    {"description": "x", "files_exist": ["docs/adr.md"]},
                ],
                **ws,
            }
        ],
    }


def criteria(project: Project) -> dict[str, dict[str, Any]]:
    return {c["description"]: c for c in project.status()["criteria"]}


@pytest.mark.parametrize("tool", quick_first(REVIEWERS))
def test_a_met_verdict_passes_the_run_with_its_evidence_and_cost(
    project: Project,
    calls: Callable[..., list[dict[str, Any]]],
    tool: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FAKE_EVIDENCE", "docs/adr.md holds ADR 1")
    project.bundle(criteria_bundle({"tool": tool}))
    result = project.uet("run", "bundle.yaml")
    assert result.code == 0, result.out + result.err
    assert "[x] W: One ADR created (" + tool in result.out
    assert ": docs/adr.md holds ADR 1)" in result.out
    crit = criteria(project)["One ADR created"]
    assert crit["state"] == "met"
    assert crit["detail"] == "docs/adr.md holds ADR 1"
    reviewer_calls = calls(tool)
    assert len(reviewer_calls) == 1
    call = reviewer_calls[0]
    assert "# ADR 1" in call["prompt"] and "One ADR created" in call["prompt"]
    assert call["written"] == []
    rows = attempt_rows(project, "W.criterion-1")
    assert [(r["tool"], r["outcome"], r["ws_id"]) for r in rows] == [(tool, "succeeded", "W")]
    assert [s["step_id"] for s in project.status()["steps"]] == ["adr"]  # a review: no step
    cost = json.loads(project.uet("cost", "--by", "workstream", "--json").out)
    (ws_cost,) = cost["run"]
    assert ws_cost["workstream"] == "W" and ws_cost["attempts"] == 2  # the step + the review
    assert ws_cost["tokens_in"] > 0
    if tool in ("claude", "aider"):  # they report dollars; codex and gemini are priced
        assert ws_cost["cost_usd"] > 0


@pytest.mark.parametrize("tool", quick_first(REVIEWERS))
def test_an_unmet_verdict_fails_the_run_with_its_evidence(
    project: Project,
    calls: Callable[..., list[dict[str, Any]]],
    tool: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FAKE_VERDICTS", "unmet")
    project.bundle(criteria_bundle({"tool": tool}))
    result = project.uet("run", "bundle.yaml")
    assert result.code == 1
    assert "[!] W: One ADR created (UNMET: the file lacks the section asked for)" in result.out
    crit = criteria(project)["One ADR created"]
    assert crit["state"] == "unmet" and crit["files"] == ["docs/adr.md"]
    assert crit["reviewer"].split()[0] == tool
    assert "completion criteria unmet: One ADR created" in project.status()["reason"]
    assert project.uet("report", "-o", "report.html").code == 0
    report = project.read("report.html")
    assert "the file lacks the section asked for" in report
    assert " on docs/adr.md" in report


@pytest.mark.parametrize("tool", quick_first(REVIEWERS))
def test_a_malformed_answer_is_unmet_with_no_verdict_and_the_reply(
    project: Project,
    calls: Callable[..., list[dict[str, Any]]],
    tool: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FAKE_VERDICTS", "malformed")
    project.bundle(criteria_bundle({"tool": tool}))
    result = project.uet("run", "bundle.yaml")
    assert result.code == 1
    detail = criteria(project)["One ADR created"]["detail"]
    assert detail.startswith("no verdict: ")
    assert "The work looks fine to me overall" in detail
    # an answer that is no verdict is not kept: the next run asks again
    assert project.uet("run", "bundle.yaml").code == 1
    assert len(calls(tool)) == 2


def test_a_reviewer_that_times_out_is_unmet_with_no_verdict(
    project: Project, calls: Callable[..., list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_CLAUDE_MODE", "slow")
    monkeypatch.setenv("FAKE_SLEEP", "30")
    project.bundle(criteria_bundle({"tool": "claude", "timeout_seconds": 0.5}))
    result = project.uet("run", "bundle.yaml")
    assert result.code == 1
    crit = criteria(project)["One ADR created"]
    assert crit["state"] == "unmet"
    assert crit["detail"].startswith("no verdict: ") and "timeout" in crit["detail"]
    (row,) = attempt_rows(project, "W.criterion-1")
    assert row["failure_class"] == "timeout"


def test_a_rerun_with_nothing_changed_makes_no_reviewer_call(
    project: Project, calls: Callable[..., list[dict[str, Any]]]
) -> None:
    project.bundle(criteria_bundle({"tool": "claude"}))
    assert project.uet("run", "bundle.yaml").code == 0
    assert project.uet("run", "bundle.yaml").code == 0
    assert len(calls("claude")) == 1
    assert criteria(project)["One ADR created"]["state"] == "met"
    rows = attempt_rows(project, "W.criterion-1")
    assert [r["outcome"] for r in rows] == ["succeeded", "cached"]
    assert rows[1]["cost_usd"] == 0 and rows[1]["saved_usd"] == rows[0]["cost_usd"]
    assert project.uet("run", "bundle.yaml", "--no-cache").code == 0
    assert len(calls("claude")) == 2  # --no-cache asks again
    # the work changed: the review runs again
    project.write("docs/adr.md", "# ADR 1, edited\n")
    assert project.uet("run", "bundle.yaml").code == 0
    assert len(calls("claude")) == 3


@pytest.mark.parametrize(
    ("review", "where", "says"),
    [
        ({"steps": True}, "workstreams[0].review", "names no tool here or at a level above"),
        ({"tool": "shell"}, "workstreams[0].review.tool", "'shell' cannot review"),
        ({"tool": "claud"}, "workstreams[0].review.tool", "did you mean 'claude'"),
        ({"tool": "claude", "max_cost_usd": -1}, "workstreams[0].review.max_cost_usd", ""),
    ],
)
def test_a_review_setting_that_cannot_work_is_refused_before_any_run(
    project: Project,
    calls: Callable[..., list[dict[str, Any]]],
    review: dict[str, Any],
    where: str,
    says: str,
) -> None:
    project.bundle(criteria_bundle(review))
    result = project.uet("validate", "bundle.yaml")
    assert result.code == 3
    text = result.out + result.err
    assert where in text and says in text
    assert "Traceback" not in text
    assert project.uet("run", "bundle.yaml").code == 3
    assert calls() == []


def test_what_a_reviewer_writes_never_reaches_the_project(
    project: Project, calls: Callable[..., list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_WRITE_ALSO", "docs/adr.md")  # relative: in the reviewer's folder
    project.bundle(criteria_bundle({"tool": "claude"}))
    assert project.uet("run", "bundle.yaml").code == 0
    assert project.read("docs/adr.md") == "# ADR 1\n"
    (wrote,) = event_rows(project, "review_wrote")
    assert wrote["files"] == ["docs/adr.md"]
    assert criteria(project)["One ADR created"]["refused_writes"] == ["docs/adr.md"]
    assert not (project.root / ".uet" / "reviews" / "work").exists() or not any(
        (project.root / ".uet" / "reviews" / "work").rglob("*.md")
    )


def test_a_judged_file_the_reviewer_changes_in_the_project_is_put_back(
    project: Project, calls: Callable[..., list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_WRITE_ALSO", str(project.root / "docs" / "adr.md"))  # absolute
    bundle = criteria_bundle({"tool": "claude"})
    bundle["workstreams"][0]["steps"][0]["command"] = "mkdir -p docs; echo '# ADR 1' > docs/adr.md"
    project.bundle(bundle)
    assert project.uet("run", "bundle.yaml").code == 0
    assert project.read("docs/adr.md") == "# ADR 1\n"
    refused = criteria(project)["One ADR created"]["refused_writes"]
    assert refused == ["docs/adr.md (at its real place; put back)"]


def test_a_review_budget_too_small_is_no_verdict_without_a_call(
    project: Project, calls: Callable[..., list[dict[str, Any]]]
) -> None:
    project.bundle(criteria_bundle({"tool": "claude", "max_cost_usd": 0}))
    result = project.uet("run", "bundle.yaml")
    assert result.code == 1
    detail = criteria(project)["One ADR created"]["detail"]
    assert detail.startswith("no verdict: ") and "budget" in detail
    assert calls("claude") == []


def test_the_dry_run_forecasts_each_review_until_its_verdict_is_kept(
    project: Project, calls: Callable[..., list[dict[str, Any]]]
) -> None:
    # room for one review at the forecast's high end (claude's default model is priced)
    bundle = criteria_bundle({"tool": "claude", "max_cost_usd": 5})
    bundle["workstreams"][0]["max_cost_usd"] = 10
    project.bundle(bundle)
    dry = project.uet("run", "bundle.yaml", "--dry-run")
    assert dry.code == 0, dry.out + dry.err
    line = next(ln for ln in dry.out.splitlines() if "W.criterion-1" in ln)
    assert "review" in line and "$" in line
    assert "1 step(s) and 1 review(s) would run" in dry.out
    forecast = json.loads(project.uet("cost", "--forecast", "bundle.yaml", "--json").out)
    (review,) = [s for s in forecast["steps"] if s["step_id"] == "W.criterion-1"]
    assert review["tool"] == "claude" and review["high_usd"] > 0
    (ws_budget,) = [b for b in forecast["budgets"] if b["budget"] == "workstream W"]
    assert ws_budget["forecast_high_usd"] >= review["high_usd"]
    assert calls() == []
    assert project.uet("run", "bundle.yaml").code == 0
    again = project.uet("run", "bundle.yaml", "--dry-run")
    assert "W.criterion-1" not in again.out


@pytest.mark.slow
def test_the_phase_k_plus_criteria_are_forecast_and_judged(
    project: Project, calls: Callable[..., list[dict[str, Any]]]
) -> None:
    """The real plan, with a reviewer at bundle level; its validations and gates call
    scripts of another repository, so they are left out, and its inputs are placeholders."""
    data = json.loads((REPO / "workstreams" / "phase-k-plus-bundle.json").read_text())
    data.pop("$schema")
    data.pop("test_gates", None)
    data["review"] = {"tool": "claude"}
    for ws in data["workstreams"]:
        ws.pop("test_gates", None)
        for step in ws["steps"]:
            step.pop("validation", None)
    bundle = Bundle.model_validate(data)
    made = {f for _, s in bundle.steps() for f in s.context.create_files}
    for _, step in bundle.steps():
        for path in step.context.files:
            if path not in made and not path.endswith("/"):
                project.write(path, f"placeholder of {path}\n")
    project.bundle(data, "phase.json")
    sentences = [
        (ws.ws_id, c)
        for ws in bundle.workstreams
        for c in ws.completion_criteria
        if isinstance(c, str)
    ] + [("bundle", c) for c in bundle.completion_criteria if isinstance(c, str)]
    assert len(sentences) >= 10
    dry = project.uet("run", "phase.json", "--dry-run")
    assert dry.code == 0, dry.out + dry.err
    assert f"and {len(sentences)} review(s) would run" in dry.out
    result = project.uet("run", "phase.json", "-c", "-n", "4")
    judged = {(c["scope"], c["description"]): c for c in project.status()["criteria"]}
    for scope, sentence in sentences:
        assert judged[(scope, sentence)]["state"] == "met", (result.out, judged[(scope, sentence)])
        assert judged[(scope, sentence)]["evidence"] == "every part asked for is there"
    assert len(calls("claude")) == len(sentences)
    assert "(to confirm)" not in result.out


def test_a_failing_reviewer_is_redacted_and_opens_its_breaker(
    project: Project, calls: Callable[..., list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "sk-ant-test-REVIEWSECRET1234"
    monkeypatch.setenv("ANTHROPIC_API_KEY", secret)
    monkeypatch.setenv("FAKE_CLAUDE_MODE", "leak")  # an auth error echoing the key
    bundle = criteria_bundle({"tool": "claude"}, circuit_breaker={"failure_threshold": 1})
    bundle["workstreams"][0]["completion_criteria"] = ["First sentence", "Second sentence"]
    project.bundle(bundle)
    result = project.uet("run", "bundle.yaml")
    assert result.code == 1
    judged = criteria(project)
    assert judged["First sentence"]["detail"].startswith("no verdict: ")
    assert "claude API error (401)" in judged["First sentence"]["detail"]
    assert "circuit open for claude" in judged["Second sentence"]["detail"]
    assert len(calls("claude")) == 1  # the open breaker let no second call through
    everything = result.out + json.dumps(project.status())
    everything += "".join(p.read_text() for p in (project.root / ".uet" / "runs").rglob("*.std*"))
    assert secret not in everything and "***" in everything


def test_a_workstream_id_of_the_longest_kind_is_reviewed_too(
    project: Project, calls: Callable[..., list[dict[str, Any]]]
) -> None:
    bundle = criteria_bundle({"tool": "claude", "max_cost_usd": 5})
    long_id = "W" * 128
    bundle["workstreams"][0]["ws_id"] = long_id
    project.bundle(bundle)
    assert project.uet("run", "bundle.yaml", "--dry-run").code == 0
    result = project.uet("run", "bundle.yaml")
    assert result.code == 0, result.out + result.err
    assert len(attempt_rows(project, f"{long_id}.criterion-1")) == 1


def test_verdicts_are_shared_through_the_step_cache_store(
    project: Project,
    calls: Callable[..., list[dict[str, Any]]],
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import shutil

    monkeypatch.setenv("UET_CACHE_STORE", str(tmp_path_factory.mktemp("team-store")))
    project.bundle(criteria_bundle({"tool": "claude"}))
    assert project.uet("run", "bundle.yaml").code == 0
    # a fresh clone: no local state at all, the same work and the same question
    shutil.rmtree(project.root / ".uet")
    for db in project.root.glob(".doit.db*"):
        db.unlink()
    result = project.uet("run", "bundle.yaml")
    assert result.code == 0, result.out + result.err
    assert len(calls("claude")) == 1
    assert criteria(project)["One ADR created"]["cached"] is True
    stats = project.uet("cache", "stats")
    assert stats.code == 0 and "Traceback" not in stats.out + stats.err


def test_a_spent_workstream_budget_pauses_the_review_and_the_run(
    project: Project, calls: Callable[..., list[dict[str, Any]]]
) -> None:
    bundle = criteria_bundle({"tool": "claude"})
    bundle["workstreams"][0]["max_cost_usd"] = 0.001  # below one review's forecast
    project.bundle(bundle)
    result = project.uet("run", "bundle.yaml")
    assert result.code == 4, result.out + result.err
    crit = criteria(project)["One ADR created"]
    assert crit["state"] == "not_evaluated"
    assert crit["detail"].startswith("review paused: ") and "workstream W" in crit["detail"]
    assert "PAUSED" in result.out and calls() == []
    raised = project.uet("run", "bundle.yaml", "--budget", "W=5")
    assert raised.code == 0, raised.out
    assert criteria(project)["One ADR created"]["state"] == "met"
