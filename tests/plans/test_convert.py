"""`uet convert`: markdown phase plans to bundles."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from uet_doit.bundle.fields import ID_PATTERN
from uet_doit.bundle.model import Bundle
from uet_doit.cli import convert_cmd
from uet_doit.errors import EXIT_USAGE, UsageError
from uet_doit.plans import convert

from support import FIXTURES, run_plugin

PLAN = FIXTURES / "plans" / "phase-K-plus-decision-context.md"


def run(*argv: str) -> int:
    return run_plugin(convert_cmd, *argv)


def plan_bundle() -> tuple[dict[str, Any], list[str]]:
    return convert.convert_markdown(PLAN.read_text(encoding="utf-8"), source=PLAN.name)


def creates(ws: dict[str, Any]) -> set[str]:
    return {f for s in ws["steps"] for f in s["context"].get("create_files", [])}


def test_k_plus_plan_gives_five_chained_weeks_with_their_deliverables() -> None:
    bundle, warnings = plan_bundle()
    Bundle.model_validate(bundle)
    wss = bundle["workstreams"]
    assert [ws["name"].split(":")[0] for ws in wss] == [f"Week {n}" for n in range(5)]
    assert [ws["depends_on"] for ws in wss] == [[]] + [[wss[i]["ws_id"]] for i in range(4)]
    assert [ws.get("priority") for ws in wss] == [
        "background",
        "critical",
        "critical",
        "high",
        "high",
    ]
    assert creates(wss[0]) == {
        "docs/TERM_RELATIONSHIPS.md",
        "docs/CROSS_REFERENCE_INDEX.md",
        "scripts/generate_term_graph.py",
        "scripts/generate_cross_references.py",
    }
    adrs = {f for f in creates(wss[1]) if f.startswith("docs/adr/0")}
    assert len(adrs) == 8
    assert "docs/adr/0003-sqlite-state-storage.md" in adrs
    assert {
        "docs/adr/template.md",
        "docs/reference/CHANGE_IMPACT_MATRIX.md",
        "docs/guidelines/ANTI_PATTERNS.md",
    } <= creates(wss[1])
    assert creates(wss[2]) == {
        "docs/architecture/EXECUTION_TRACES.md",
        "docs/guidelines/TESTING_STRATEGY.md",
    }
    assert creates(wss[3]) == {
        "docs/architecture/DEPENDENCY_GRAPH.md",
        "docs/reference/ERROR_CATALOG.md",
        "docs/architecture/DATA_FLOWS.md",
    }
    assert creates(wss[4]) == {
        "docs/architecture/PERFORMANCE_PROFILES.md",
        "docs/reference/STATE_MACHINES.md",
        "scripts/validate_decision_context.py",
        "docs/guidelines/DECISION_MAKING_GUIDE.md",
    }
    # "Updated `docs/ARCHITECTURE.md`" is an edit: an input, not a target
    edited = [f for s in wss[2]["steps"] for f in s["context"].get("files", [])]
    assert edited == ["docs/ARCHITECTURE.md"]
    assert any("docs/diagrams/" in w for w in warnings)


def test_tasks_become_steps_with_nested_bullets_as_instruction() -> None:
    bundle, _ = plan_bundle()
    week0, week1 = bundle["workstreams"][:2]
    # Week 0 keeps its tasks under sub-headings (K-1 ..., K-4 ...): all six are steps
    assert [s["step_id"] for s in week0["steps"]][:2] == [
        "w0-01-broken-documentation-links-74",
        "w0-02-missing-term-auto-locations-6",
    ]
    assert len(week0["steps"]) == 6
    assert week0["steps"][0]["metadata"]["section"] == "K-1 Optional Cleanup Tasks"
    adr = week1["steps"][0]
    assert adr["name"] == "Architecture Decision Records (ADRs)"
    assert (
        "`0002-hybrid-architecture.md` - GUI/Terminal/TUI decision"
        in (adr["context"]["instruction"])
    )
    ids = [s["step_id"] for ws in bundle["workstreams"] for s in ws["steps"]]
    assert len(ids) == len(set(ids))
    assert all(re.match(ID_PATTERN, i) for i in ids)


def test_code_fences_and_repeated_summary_headings_are_ignored() -> None:
    bundle, _ = plan_bundle()
    text = json.dumps(bundle)
    assert "ADR-NNNN" not in text  # the ADR template lives in a fence
    assert "File/system to update" not in text  # a checkbox inside a fence
    assert len(bundle["workstreams"]) == 5


def test_conversion_is_deterministic() -> None:
    assert plan_bundle() == plan_bundle()


SYNTHETIC = """# Plan

## Week 1: Setup 🟠 HIGH VALUE

```markdown
## Week 9: Not a week
- [ ] `fake/file.md`
```

### Tasks
1. **Create the parser**
   - write `src/parser.py`
2. **Write docs**

### Deliverables
- [x] `src/parser.py` parser module
- [ ] `docs/usage.md` usage guide
- [ ] `extra/tool.sh` helper script

## Week 2: Ship

1. Release

## Summary

### Week 1: Setup
- recap only
"""


def test_synthetic_plan_places_deliverables_and_warns_for_repeats() -> None:
    bundle, warnings = convert.convert_markdown(SYNTHETIC, source="plan.md", tool="aider")
    Bundle.model_validate(bundle)
    assert bundle["tool_profile_id"] == "aider"
    week1, week2 = bundle["workstreams"]
    assert week1["priority"] == "high"
    steps = {s["name"]: s["context"].get("create_files", []) for s in week1["steps"]}
    assert steps["Create the parser"] == ["src/parser.py"]
    assert steps["Write docs"] == ["docs/usage.md"]
    # a deliverable that matches no task gets a step of its own
    assert steps["extra/tool.sh helper script"] == ["extra/tool.sh"]
    assert [s["name"] for s in week2["steps"]] == ["Release"]
    assert any("repeats the heading" in w and "ignored" in w for w in warnings)


def test_repeated_heading_with_tasks_is_merged_into_the_first() -> None:
    text = "## Week 1: A\n1. first\n\n## Later\n\n### Week 1: A\n1. second\n"
    bundle, warnings = convert.convert_markdown(text, source="p.md")
    (ws,) = bundle["workstreams"]
    assert [s["name"] for s in ws["steps"]] == ["first", "second"]
    assert any("merged" in w for w in warnings)


def test_custom_heading_pattern() -> None:
    text = "# X\n\n## Phase 1 - Build\n1. build it\n\n## Phase 2 - Test\n1. test it\n"
    bundle, _ = convert.convert_markdown(
        text, source="p.md", heading_pattern=r"^Phase (?P<num>\d+) - (?P<title>.+)$"
    )
    # the id prefix follows the kind the heading names: p for Phase, w for Week, m for M1
    assert [ws["ws_id"] for ws in bundle["workstreams"]] == ["p1-build", "p2-test"]


def test_plan_without_matching_headings_is_a_clear_usage_error() -> None:
    text = "# Notes\n\nSome prose.\n\n## Stage A\n\n- a thought\n"
    with pytest.raises(UsageError, match="no headings or lines match --unit-pattern"):
        convert.convert_markdown(text, source="notes.md", heading_pattern=r"^Phase \d+")


def test_bad_regex_and_bad_bundle_id_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="not a valid regex"):
        convert.convert_markdown("# x", source="p.md", heading_pattern="(")
    with pytest.raises(UsageError, match="not a valid id"):
        convert.convert_markdown("# x", source="p.md", bundle_id="has space")


def test_cli_writes_yaml_and_prints_a_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out" / "bundle.yaml"
    assert run("convert", str(PLAN), "-o", str(out), "--bundle-id", "phase-k-plus") == 0
    data = yaml.safe_load(out.read_text(encoding="utf-8"))
    assert Bundle.model_validate(data).bundle_id == "phase-k-plus"
    err = capsys.readouterr().err
    assert "5 workstreams, 19 steps" in err
    assert "warning:" in err


def test_cli_reports_missing_file_and_unknown_extension(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("convert", str(tmp_path / "nope.md")) == EXIT_USAGE
    assert run("convert", str(PLAN), "-o", str(tmp_path / "b.txt")) == EXIT_USAGE
    assert "cannot tell the format" in capsys.readouterr().out


def test_cli_stdout_is_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("convert", str(PLAN)) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["workstreams"]) == 5


STATE_PLAN = """# Plan

## Week 1: Build

- [ ] Write the store `.uet/state.db`
- [ ] Write the doit db `.doit.db`
- [ ] Write a hook `.git/hooks/pre-commit.sh`
- [ ] Write outside `../../etc/x.conf`
- [ ] Write absolute `/etc/x.conf`
- [ ] Write through a link `outside/x.md`
- [ ] Write the real one `src/app.py`
- [ ] Update `.uet/landing.json`
"""


def test_what_convert_writes_passes_validate_and_explain_lists_the_refused(
    project: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    (project.root / "outside").symlink_to(tmp_path_factory.mktemp("elsewhere"))
    project.write("plan.md", STATE_PLAN)
    res = project.uet("convert", "plan.md", "-o", "bundle.json")
    assert res.code == 0, res.err
    assert project.uet("validate", "bundle.json").code == 0
    data = json.loads(project.read("bundle.json"))
    named = {
        p
        for s in data["workstreams"][0]["steps"]
        for k in ("files", "create_files")
        for p in s["context"].get(k, [])
    }
    assert named == {"src/app.py"}
    assert "line 5: '.uet/state.db' is in .uet/" in res.err
    explained = project.uet("convert", "plan.md", "--explain").out
    left_out = explained.split("left out:\n", 1)[1].split("warnings:", 1)[0]
    for line, path in [
        (5, ".uet/state.db"),
        (6, ".doit.db"),
        (7, ".git/hooks/pre-commit.sh"),
        (8, "../../etc/x.conf"),
        (9, "/etc/x.conf"),
        (10, "outside/x.md"),
        (12, ".uet/landing.json"),
    ]:
        assert f"plan.md:{line:<5} {path}  [" in left_out, left_out
