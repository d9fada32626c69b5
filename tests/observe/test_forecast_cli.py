"""The forecast where users meet it: `uet run --dry-run`, `uet cost --forecast`, budget
reservations, `uet cost` and the report, with the fake AI tools (aider's cost line is
$0.0081 an attempt)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from uet_doit.testing import use_fake_tools

from support import REPO, Project, load_benchmark, shell_step

FAKE_AIDER_COST = 0.0081
RANGE = re.compile(r"\$(\d+\.\d+)-\$(\d+\.\d+)")


@pytest.fixture
def fake_path(project: Project, tmp_path_factory: pytest.TempPathFactory,
              monkeypatch: pytest.MonkeyPatch) -> Path:  # fmt: skip
    """The fake AI CLIs on PATH (never a real one), logging each call."""
    outside = tmp_path_factory.mktemp("fakes")
    fakes = use_fake_tools(outside, monkeypatch, home=False)
    monkeypatch.setenv("HOME", str(outside))
    return fakes.log


def aider_bundle(n: int, budget: float | None = None, **ws: Any) -> dict[str, Any]:
    steps = [
        {
            "step_id": f"a{i}",
            "tool_profile_id": "aider",
            "context": {
                "files": ["notes.md"],
                "create_files": [f"out/a{i}.md"],
                "instruction": f"Write part {i} of the summary",
            },
        }
        for i in range(n)
    ]
    workstream = {"ws_id": "WS", "steps": steps, **ws}
    data: dict[str, Any] = {"bundle_id": "fc", "workstreams": [workstream]}
    if budget is not None:
        data["max_cost_usd"] = budget
    return data


def ranges(out: str) -> dict[str, tuple[float, float]]:
    found = {}
    for line in out.splitlines():
        words = line.split()
        match = RANGE.search(line)
        step_line = line.startswith("  ") and not line.startswith("   ")
        if words and match and step_line and words[0] != "forecast":  # not a ws total
            found[words[0]] = (float(match[1]), float(match[2]))
    return found


def test_k_plus_dry_run_on_a_fresh_project_forecasts_every_ai_step(project: Project) -> None:
    shutil.copy(REPO / "workstreams" / "phase-k-plus-bundle.json", project.root / "kplus.json")
    result = project.uet("run", "kplus.json", "--dry-run")
    assert result.code == 0, result.err
    steps = ranges(result.out)
    assert len(steps) == 37
    for step_id, (low, high) in steps.items():
        assert 0 < low < high, step_id
    details = [line for line in result.out.splitlines() if line.startswith("      aider ")]
    assert len(details) == 37
    for line in details:
        assert "gpt-4o (assumed: aider's default" in line
        assert re.search(r"[\d.]+k?-[\d.]+k? tokens in", line)
        assert "price map" in line or "uet price table of " in line
        assert "defaults (no history yet)" in line
    last = result.out.splitlines()[-1]
    assert last.startswith("37 step(s) would run; forecast $")
    assert "against bundle phase-k-plus budget $50.00 ($50.00 left): fits" in last
    assert "against workstream WS-K0-FOUNDATION budget $5.0000" in result.out


def test_a_second_forecast_is_calibrated_and_the_report_compares(
    project: Project, fake_path: Path
) -> None:
    project.write("notes.md", "notes\n")
    project.bundle(aider_bundle(2))
    first = project.uet("run", "bundle.yaml")
    assert first.code == 0, first.out + first.err
    for i in range(2):
        (project.root / f"out/a{i}.md").unlink()
    dry = project.uet("run", "bundle.yaml", "--dry-run")
    assert "calibrated from 2 attempt(s) of aider/gpt-4o" in dry.out
    steps = ranges(dry.out)
    assert set(steps) == {"a0", "a1"}
    for low, high in steps.values():
        assert low == pytest.approx(FAKE_AIDER_COST)  # the median of what it cost
        assert high == pytest.approx(FAKE_AIDER_COST * 3)  # 1 try + 2 default retries
    forecast = json.loads(project.uet("cost", "--forecast", "bundle.yaml", "--json").out)
    assert [s["calibrated"] for s in forecast["steps"]] == [True, True]
    assert forecast["steps"][0]["price_source"] == "observed costs"

    second = project.uet("run", "bundle.yaml")
    assert second.code == 0, second.out
    report = project.root / "r.html"
    assert project.uet("report", "-o", str(report)).code == 0
    page = report.read_text()
    section = page[page.index('id="forecast"') :]
    section = section[: section.index("</section>")]
    assert "Forecast against actual" in section
    for step in ("a0", "a1"):
        assert f"<code>{step}</code>" in section
    assert section.count("$0.0081-$0.0243") == 2 and section.count(">within<") == 2
    assert "calibrated from 2 attempt(s)" in section


@pytest.mark.slow
def test_steps_admitted_together_reserve_their_forecasts(
    project: Project, fake_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No estimated_cost_usd: each attempt reserves its forecast's high end, so a budget
    of 2.5 forecasts lets at most two steps run at once (with 0 reserved, all four would)."""
    from uet_doit.bundle.loader import load_bundle
    from uet_doit.run.forecast.inputs import bundle_forecasts
    from uet_doit.tools.routing import default_known_tools

    project.write("notes.md", "notes\n")
    path = project.bundle(aider_bundle(4))
    bundle = load_bundle(path, project.root, known_tools=default_known_tools(), remember=False)
    per_attempt = max(f.attempt_usd[1] for f in bundle_forecasts(bundle, project.root, None))
    limit = 2.5 * per_attempt
    assert limit < 4 * per_attempt
    project.bundle(aider_bundle(4, budget=limit))
    monkeypatch.setenv("FAKE_AIDER_MODE", "slow")
    monkeypatch.setenv("FAKE_SLEEP", "0.6")
    result = project.uet("run", "bundle.yaml", "-n", "4")
    assert result.code == 4, result.out + result.err  # paused by the budget
    calls = [json.loads(line) for line in fake_path.read_text().splitlines()]
    assert len(calls) == 2 and result.out.count("PAUSED fc:a") == 2
    assert f"+ ${2 * per_attempt:.4f} reserved + ${per_attempt:.4f} estimated" in result.out
    spent = json.loads(project.uet("cost", "--json").out)["budgets"][0]["spent_usd"]
    assert spent == pytest.approx(2 * FAKE_AIDER_COST) and spent <= limit
    # what was spent is known now: the two paused steps fit beside it
    again = project.uet("run", "bundle.yaml", "-n", "4")
    assert again.code == 0, again.out
    assert len(fake_path.read_text().splitlines()) == 4


def test_cost_shows_overspend_never_a_negative_remainder(project: Project) -> None:
    pay = """echo '{"cost_usd": 0.6}' > $UET_RESULT_FILE"""
    project.bundle(
        {
            "bundle_id": "o",
            "max_cost_usd": 1.0,
            "on_budget_exceeded": "warn",
            "workstreams": [
                {"ws_id": "WS", "steps": [shell_step("p1", pay), shell_step("p2", pay)]}
            ],
        }
    )
    assert project.uet("run", "bundle.yaml").code == 0
    text = project.uet("cost").out
    assert "OVERSPENT by $0.2000" in text and "$-" not in text
    row = json.loads(project.uet("cost", "--json").out)["budgets"][0]
    assert (row["remaining_usd"], row["overspent_usd"]) == (0, pytest.approx(0.2))


def test_forecast_flags_budgets_its_high_end_breaks(project: Project) -> None:
    project.write("notes.md", "notes\n")
    project.bundle(aider_bundle(3, budget=0.05))
    result = project.uet("cost", "--forecast", "bundle.yaml")
    assert result.code == 0, result.err
    assert "against bundle fc budget $0.0500 ($0.0500 left): HIGH END EXCEEDS it" in result.out
    assert "! bundle fc: forecast $" in result.out and "raise it with --budget" in result.out
    bad = project.uet("cost", "some-run", "--forecast", "bundle.yaml")
    assert bad.code == 3 and "takes no RUN_ID" in bad.err


def test_codex_steps_use_the_model_of_codexs_config(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = project.write(".codexhome/config.toml", 'model = "gpt-5-mini"\n').parent
    monkeypatch.setenv("CODEX_HOME", str(home))
    project.bundle(
        {
            "bundle_id": "cx",
            "workstreams": [
                {"ws_id": "WS", "steps": [{"step_id": "c1", "tool_profile_id": "codex",
                                           "instruction": "Write it"}]},
            ],
        }
    )  # fmt: skip
    data = json.loads(project.uet("cost", "--forecast", "bundle.yaml", "--json").out)
    [step] = data["steps"]
    assert (step["model"], step["model_from"]) == ("gpt-5-mini", "codex's config.toml")
    assert step["low_usd"] > 0


def test_the_forecast_benchmark_runs(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    """benchmarks/forecast.py at a tiny size (keeps it runnable; not a speed check)."""
    load_benchmark("forecast").measure(project.root, 3, 5, 1)
    out = capsys.readouterr().out
    assert out.count("forecast of every step") == 2 and "reservation estimate" in out


KPLUS_GUIDE = REPO / "tests" / "fixtures" / "corpus" / "phase-k-plus-bundle.json"


def only_fakes(monkeypatch: pytest.MonkeyPatch, tmp: Path, *tools: str) -> None:
    """PATH with just these fake AI CLIs (none at all when `tools` is empty)."""
    use_fake_tools(tmp, monkeypatch, home=False).link(*tools)


def test_the_guide_bundle_names_no_tool_and_says_it_cannot_run_without_one(
    project: Project, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copy(KPLUS_GUIDE, project.root / "kplus.json")
    only_fakes(monkeypatch, tmp_path_factory.mktemp("none"))
    result = project.uet("run", "kplus.json", "--dry-run")
    assert result.code == 0, result.err
    blocked = [ln for ln in result.out.splitlines() if "CANNOT RUN (no tool)" in ln]
    assert len(blocked) == 16
    assert "no AI tool (aider, claude, codex, gemini) is installed" in result.out
    assert ": fits" not in result.out
    assert "16 step(s) cannot run" in result.out
    data = json.loads(project.uet("cost", "--forecast", "kplus.json", "--json").out)
    assert data["cannot_run_steps"] == 16
    assert all(s["cannot_run"] for s in data["steps"])


def test_auto_steps_forecast_over_the_tools_they_could_be_routed_to(
    project: Project, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copy(KPLUS_GUIDE, project.root / "kplus.json")
    only_fakes(monkeypatch, tmp_path_factory.mktemp("two"), "aider", "claude")
    result = project.uet("run", "kplus.json", "--dry-run")
    assert result.code == 0, result.err
    steps = {k: v for k, v in ranges(result.out).items() if k != "!"}  # not the budget flags
    assert len(steps) == 16
    assert all(0 < low < high for low, high in steps.values()), steps
    assert result.out.count("auto -> aider|claude") == 16
    data = json.loads(project.uet("cost", "--forecast", "kplus.json", "--json").out)
    first = data["steps"][0]
    assert first["choices"] == ["aider", "claude"] and first["cannot_run"] is None
    # a route narrows the choice, and the forecast follows it
    project.write("router_config.json", json.dumps({"routes": [
        {"task_kind": "docs", "tools": ["aider"]}, {"task_kind": "code", "tools": ["aider"]},
        {"task_kind": "testing", "tools": ["aider"]}]}))  # fmt: skip
    data = json.loads(project.uet("cost", "--forecast", "kplus.json", "--json").out)
    assert {tuple(s["choices"]) for s in data["steps"]} == {("aider",)}


def test_an_auto_step_with_nothing_configured_runs_with_an_installed_tool(
    project: Project, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    only_fakes(monkeypatch, tmp_path_factory.mktemp("one"), "claude")
    project.write("notes.md", "notes\n")
    step = {"step_id": "s", "context": {"files": ["notes.md"], "create_files": ["out/s.md"],
                                        "instruction": "Summarise"}}  # fmt: skip
    project.bundle({"bundle_id": "a", "workstreams": [{"ws_id": "W", "steps": [step]}]})
    assert project.uet("run", "bundle.yaml").code == 0
    assert project.status()["steps"][0]["tool"] == "claude"


def test_estimated_context_tokens_feed_a_step_without_input_files(project: Project) -> None:
    def step(ws_id: str, tokens: int | None) -> dict[str, Any]:
        context = {"create_files": [f"out/{ws_id}.md"], "instruction": "Write it"}
        ws: dict[str, Any] = {
            "ws_id": ws_id,
            "steps": [{"step_id": ws_id.lower(), "tool_profile_id": "aider", "context": context}],
        }
        if tokens is not None:
            ws["estimated_context_tokens"] = tokens
        return ws

    project.bundle({"bundle_id": "ctx", "workstreams": [step("BIG", 50_000), step("NONE", None)]})
    data = json.loads(project.uet("cost", "--forecast", "bundle.yaml", "--json").out)
    big, none = data["steps"]
    assert big["tokens_in"][0] >= 50_000 > none["tokens_in"][0]
    assert any("estimated_context_tokens" in a for a in big["assumptions"])


def test_a_large_estimated_context_is_reserved_before_the_step_starts(
    project: Project, fake_path: Path
) -> None:
    context = {"create_files": ["out/x.md"], "instruction": "Write it"}
    step = {"step_id": "x", "tool_profile_id": "aider", "context": context}
    ws = {"ws_id": "W", "max_cost_usd": 1.0, "estimated_context_tokens": 2_000_000,
          "steps": [step]}  # fmt: skip
    project.bundle({"bundle_id": "big", "workstreams": [ws]})
    result = project.uet("run", "bundle.yaml")
    assert result.code == 4, result.out  # paused: 2M tokens of gpt-4o cannot fit in $1
    assert not fake_path.exists()  # aider never started
