"""Costs through `uet`: a cost uet cannot know is unknown, never $0 (status, `uet cost`,
the report, budgets); one price chain for actual costs, shown by `uet cost --prices`.

Driven with the fake codex (tokens, no dollars) and shell steps reporting a cost uet rejects.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from uet_doit.testing import use_fake_tools

from support import Project, event_rows, one_ws, shell_step

UNPRICED = "gpt-unpriced-9"
BAD_COST = 'echo \'{"cost_usd": -50}\' > "$UET_RESULT_FILE"; echo $UET_STEP_ID >> ran.log'


@pytest.fixture
def codex(project: Project, tmp_path_factory: pytest.TempPathFactory, mp: Any) -> Path:
    """Only the fake codex on PATH, with no config.toml of its own."""
    fakes = use_fake_tools(tmp_path_factory.mktemp("fakes"), mp, "codex", home=False)
    home = fakes.folder / "home"
    home.mkdir()
    mp.setenv("HOME", str(home))
    project.write("notes.md", "some notes\n")
    return fakes.bin_dir


@pytest.fixture
def mp(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    return monkeypatch


def codex_step(step_id: str, model: str = UNPRICED, **extra: Any) -> dict[str, Any]:
    context = {
        "files": ["notes.md"],
        "create_files": [f"out/{step_id}.md"],
        "instruction": "Write the summary",
    }
    return {"step_id": step_id, "tool_profile_id": "codex", "model": model, "context": context,
            **extra}  # fmt: skip


def test_an_unpriced_model_is_unknown_not_zero(project: Project, codex: Path) -> None:
    project.bundle(one_ws(codex_step("a"), codex_step("b", model="gpt-5-codex")))
    assert project.uet("run", "bundle.yaml").code == 0
    status = project.status()
    steps = {s["step_id"]: s for s in status["steps"]}
    assert steps["a"]["cost_usd"] is None
    assert f"no price for model '{UNPRICED}'" in steps["a"]["cost_unknown_reason"]
    assert steps["b"]["cost_usd"] > 0
    assert status["total_cost_usd"] == pytest.approx(steps["b"]["cost_usd"])
    assert status["unknown_cost_steps"] == 1
    text = project.uet("status").out
    assert "cost unknown (no price for model" in text
    assert "+ 1 step of unknown cost" in text
    assert "+ 1 step of unknown cost" in project.uet("runs").out
    cost = project.uet("cost", "--by", "step")
    assert "+ 1 step of unknown cost" in cost.out.splitlines()[0]
    line = next(ln for ln in cost.out.splitlines() if ln.strip().startswith("a "))
    assert "unknown" in line and "$0.0000" not in line
    data = json.loads(project.uet("cost", "--by", "step", "--json").out)
    rows = {r["step"]: r for r in data["run"]}
    assert rows["a"]["cost_usd"] is None and rows["a"]["unknown_cost_attempts"] == 1
    assert data["unknown_cost_steps"] == 1
    out = project.root / "report.html"
    assert project.uet("report", "--output", str(out)).code == 0
    html = out.read_text(encoding="utf-8")
    assert "+ 1 step of unknown cost" in html and "unknown" in html


def test_unknown_costs_count_at_the_forecast_high_end(project: Project, codex: Path) -> None:
    steps = [codex_step(f"s{i}", **({"depends_on": [f"s{i - 1}"]} if i else {})) for i in range(4)]
    project.bundle(one_ws(*steps, max_cost_usd=100.0))
    assert project.uet("run", "bundle.yaml").code == 0
    charged = event_rows(project, "cost_unknown")
    assert len(charged) == 4
    assert all(e["charged_usd"] > 0 for e in charged)
    assert "high end of one attempt of its forecast" in charged[0]["message"]
    budget = json.loads(project.uet("cost", "--json").out)["budgets"][0]
    assert budget["unknown_cost_attempts"] == 4
    assert budget["spent_usd"] == pytest.approx(sum(e["charged_usd"] for e in charged))
    assert "counted at their forecast's high end" in project.uet("cost").out


def test_rejected_costs_count_at_the_step_estimate(project: Project) -> None:
    """Issue 23 #10: six steps estimated at $0.01 that report -$50 under a $0.035 budget."""
    steps = [
        shell_step(f"s{i}", BAD_COST, estimated_cost_usd=0.01, **(
            {"depends_on": [f"s{i - 1}"]} if i else {}))
        for i in range(6)
    ]  # fmt: skip
    project.bundle(one_ws(*steps, max_cost_usd=0.035))
    result = project.uet("run", "bundle.yaml")
    assert result.code == 4, result.out
    assert project.lines("ran.log") == ["s0", "s1", "s2"]
    status = project.status()
    assert status["unknown_cost_steps"] == 3
    assert all(s["cost_usd"] is None for s in status["steps"] if s["attempts"])
    assert "negative, NaN or infinite" in status["steps"][0]["cost_unknown_reason"]


def test_a_rejected_cost_without_an_estimate_is_never_free(project: Project) -> None:
    steps = [
        shell_step(f"s{i}", BAD_COST, **({"depends_on": [f"s{i - 1}"]} if i else {}))
        for i in range(3)
    ]
    project.bundle(one_ws(*steps, max_cost_usd=0.015))
    assert project.uet("run", "bundle.yaml").code == 4
    assert len(project.lines("ran.log")) < 3


def test_actual_costs_use_the_price_chain_and_say_which_source(
    project: Project, codex: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from uet_doit.tools import prices

    fake = prices.litellm_table_from(
        {"gpt-from-litellm": {"input_cost_per_token": 1e-6, "output_cost_per_token": 1e-5}},
        "litellm 9.9",
    )
    monkeypatch.setattr(prices, "litellm_price_table", lambda: fake)
    project.write(
        "router_config.json",
        json.dumps({"prices": {"my-local": {"input_per_mtok": 1, "output_per_mtok": 2}}}),
    )
    steps = [
        codex_step("lit", model="openai/gpt-from-litellm"),
        codex_step("own", model="my-local"),
        codex_step("table", model="gpt-5.5-2026-04-23"),
        codex_step("none", model=UNPRICED),
    ]
    project.bundle(one_ws(*steps))
    assert project.uet("run", "bundle.yaml").code == 0
    costs = {s["step_id"]: s["cost_usd"] for s in project.status()["steps"]}
    tin, tout = 24763, 122  # what the fake codex reports
    assert costs["lit"] == pytest.approx((tin * 1 + tout * 10) / 1e6)
    assert costs["own"] == pytest.approx((tin * 1 + tout * 2) / 1e6)
    assert costs["table"] == pytest.approx((tin * 5 + tout * 30) / 1e6)  # gpt-5.5's price
    assert costs["none"] is None
    listed = {r["model"]: r for r in json.loads(project.uet("cost", "--prices", "--json").out)}
    assert listed["openai/gpt-from-litellm"]["source"] == "litellm 9.9 price map"
    assert listed["my-local"]["source"] == "router_config.json prices"
    assert listed["gpt-5.5-2026-04-23"]["source"].startswith("uet price table of ")
    assert listed[UNPRICED]["source"] is None
    assert "codex: 1 attempt(s)" in listed[UNPRICED]["seen"]
    text = project.uet("cost", "--prices").out
    assert f"no price for {UNPRICED}" in text
    assert "litellm 9.9 price map" in text


def test_codex_without_a_model_is_priced_at_its_default(project: Project, codex: Path) -> None:
    context = {"files": ["notes.md"], "create_files": ["out/d.md"], "instruction": "Write it"}
    project.bundle(one_ws({"step_id": "d", "tool_profile_id": "codex", "context": context}))
    assert project.uet("run", "bundle.yaml").code == 0
    step = project.status()["steps"][0]
    assert step["cost_usd"] == pytest.approx((24763 * 5 + 122 * 30) / 1e6)


@pytest.mark.slow  # a whole run of fake tools; the quick loop has its kin
def test_an_isolated_step_of_unknown_cost_says_so_in_its_commit(
    project: Project, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from git_support import git, make_repo, step_commits

    make_repo(project, tmp_path_factory.mktemp("home"), monkeypatch)
    project.bundle(one_ws(codex_step("a")))
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "bundle")
    result = project.uet("run", "bundle.yaml")
    assert result.code == 0, result.out
    [commit] = step_commits(project)
    assert commit["Uet-Cost-USD"] == "unknown" and commit["Uet-Model"] == UNPRICED
    out = project.root / "report.html"
    assert project.uet("report", "--output", str(out)).code == 0
    assert "cost unknown" in out.read_text(encoding="utf-8")
