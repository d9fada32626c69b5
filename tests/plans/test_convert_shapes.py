"""`uet convert` on the plans people write: real plans of many shapes, and small ones of ours."""

from __future__ import annotations

import json
from typing import Any

import pytest

from uet_doit.errors import EXIT_USAGE
from uet_doit.plans import convert
from uet_doit.testing import FakeTools

from support import FIXTURES, Project

PLANS = FIXTURES / "plans"


def bundle_of(text: str, source: str = "plan.md", **options: Any) -> dict[str, Any]:
    bundle, _ = convert.convert_markdown(text, source=source, **options)
    return bundle


def creates(bundle: dict[str, Any]) -> set[str]:
    return {
        f
        for ws in bundle["workstreams"]
        for s in ws["steps"]
        for f in s["context"].get("create_files", [])
    }


def step(bundle: dict[str, Any], prefix: str) -> dict[str, Any]:
    found: dict[str, Any] = next(
        s for ws in bundle["workstreams"] for s in ws["steps"] if s["step_id"].startswith(prefix)
    )
    return found


#: plan -> (workstreams, some files the plan says are made, read from the plan by hand)
CORPUS = {
    "phase-K-plus-decision-context.md": (
        5,
        {
            "docs/adr/template.md",
            "scripts/generate_term_graph.py",
            "docs/reference/STATE_MACHINES.md",
        },
    ),
    "phase-K-plus-UET-EXECUTION-GUIDE.md": (3, set()),
    "phase-plan-summary.md": (
        11,
        {"config/tool_profiles.json", "src/pipeline/tools.py", "docs/aider_contract.md"},
    ),
    "phase-openspec-integration.md": (8, {"scripts/generate_workstreams_from_openspec.py"}),
    "section-refactor-plan.md": (1, set()),
    "section-aware-refactor-workstream-plan.md": (
        9,
        {"tools/hardcoded_path_indexer.py", "refactor_paths.db", "config/section_map.yaml"},
    ),
    "ph-00-baseline-project-skeleton.md": (1, {"scripts/bootstrap.ps1", "scripts/test.ps1"}),
    "aider-ph-09-multi-document-versioning.md": (
        1,
        {
            "docs/SPEC_MANAGEMENT_CONTRACT.md",
            "tools/spec_indexer/__init__.py",
            "scripts/spec_tools.py",
        },
    ),
    "test-specs-plugins.md": (9, set()),
}


def test_the_corpus_table_covers_every_plan() -> None:
    assert sorted(CORPUS) == sorted(p.name for p in PLANS.glob("*.md"))


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_every_real_plan_converts_to_a_bundle_uet_validate_accepts(
    name: str, project: Project
) -> None:
    project.write(name, (PLANS / name).read_text(encoding="utf-8"))
    res = project.uet("convert", name, "-o", "bundle.json")
    assert res.code == 0, res.out + res.err
    assert project.uet("validate", "bundle.json").code == 0
    bundle = json.loads(project.read("bundle.json"))
    count, files = CORPUS[name]
    assert len(bundle["workstreams"]) == count
    assert files <= creates(bundle)
    items = [*bundle["workstreams"], *(s for ws in bundle["workstreams"] for s in ws["steps"])]
    assert all(i["x-source"].startswith(f"{name}:") for i in items)
    # the same plan twice: the same bytes
    assert project.uet("convert", name, "-o", "again.json").code == 0
    assert (project.root / "again.json").read_bytes() == (project.root / "bundle.json").read_bytes()


def test_phase_plan_with_decimal_phases_keeps_document_order_and_merges_repeats() -> None:
    bundle = bundle_of((PLANS / "phase-plan-summary.md").read_text(encoding="utf-8"))
    ids = [ws["ws_id"].split("-")[0] for ws in bundle["workstreams"]]
    assert ids == [
        f"ph{n}" for n in ["01", "02", "03", "04", "03.5", "05", "05.5", "06", "07", "08", "09"]
    ]
    ph06 = bundle["workstreams"][7]
    assert "circuit_breakers.py" in json.dumps(ph06)  # the second `## PH-06`, merged into it


def test_pasted_terminal_box_plan_is_unboxed_and_ws_lines_are_steps_with_their_deps() -> None:
    bundle = bundle_of((PLANS / "section-aware-refactor-workstream-plan.md").read_text("utf-8"))
    assert sum(len(ws["steps"]) for ws in bundle["workstreams"]) == 21
    ws01 = step(bundle, "p1-01-ws-01")
    assert ws01["x-source"].endswith(":23")
    assert "docs/HARDCODED_PATH_INDEXER.md" in ws01["context"]["create_files"]
    # "Dependencies: WS-09 (spec tools)" and "Dependencies: WS-12, WS-13"
    assert step(bundle, "p5-02-ws-10")["depends_on"] == [step(bundle, "p5-01-ws-09")["step_id"]]
    assert step(bundle, "p6-03-ws-14")["depends_on"] == [
        step(bundle, "p6-01-ws-12")["step_id"],
        step(bundle, "p6-02-ws-13")["step_id"],
    ]
    assert "│" not in json.dumps(bundle, ensure_ascii=False)


MILESTONES = """# Release plan

Intro text.

## M1 — Parser
- [ ] Write the tokenizer in `src/lexer.py`
- [ ] Write the parser in `src/parser.py`

## M2 — CLI (deferred)
- [ ] Command line in `src/cli.py`
- [x] Usage notes in `docs/cli.md`

## Risks
- the parser may be slow

## M3 — Release (requires M1)
- [ ] Changelog `CHANGELOG.md`
"""


def test_milestones_with_checklists_become_workstreams_with_their_files() -> None:
    bundle = bundle_of(MILESTONES, source="release.md")
    wss = bundle["workstreams"]
    assert [ws["ws_id"] for ws in wss] == ["m1-parser", "m2-cli", "m3-release"]
    assert [s["context"]["create_files"] for s in wss[0]["steps"]] == [
        ["src/lexer.py"],
        ["src/parser.py"],
    ]
    assert creates(bundle) >= {"src/cli.py", "docs/cli.md", "CHANGELOG.md"}
    assert wss[1]["metadata"]["marks"] == ["deferred"]
    assert wss[1]["priority"] == "background"
    # order gives dependencies; "requires M1" replaces the order for M3
    assert [ws["depends_on"] for ws in wss] == [[], ["m1-parser"], ["m1-parser"]]
    assert not any("slow" in json.dumps(ws) for ws in wss)  # Risks is a note, not work
    assert bundle["metadata"]["notes"] == [{"title": "Risks", "x-source": "release.md:13"}]
    assert wss[2]["steps"][0]["x-source"] == "release.md:17"


PHASES = """# Migration

### Phase 00 \u2013 Baseline
1. Record the current timings

### Phase 01: Schema
Tasks
- Add the table in `db/schema.sql`
- Update `db/seed.sql` for the new table

Deliverables
- `db/schema.sql` with the new table

### Phase 01.5 — Backfill (after Phase 00)
```python
# scripts/backfill.py
print("backfill")
```
- Backfill the rows

### Phase 02 — Cut over
Files Created:
- scripts/cutover.sh - the switch
"""


def test_phases_with_dashes_and_decimals_in_order_with_snippets_and_files_lists() -> None:
    bundle = bundle_of(PHASES)
    wss = bundle["workstreams"]
    assert [ws["ws_id"].split("-")[0] for ws in wss] == ["p00", "p01", "p01.5", "p02"]
    assert [ws["depends_on"] for ws in wss] == [
        [],
        [wss[0]["ws_id"]],
        [wss[0]["ws_id"]],
        [wss[2]["ws_id"]],
    ]
    add, update = wss[1]["steps"]
    assert add["context"]["create_files"] == ["db/schema.sql"]
    assert update["context"]["files"] == ["db/seed.sql"]  # `Update ...`: an input, not a target
    assert creates(bundle) >= {"scripts/backfill.py", "scripts/cutover.sh"}  # snippet, list


def test_plan_with_only_a_tasks_section_is_one_workstream() -> None:
    text = (
        "# Cleanup\n\n## Background\n- why we do it\n\n## Next actions\n"
        "- Delete `old/tool.py`\n- Write `docs/cleanup.md`\n\n## Acceptance\n- nothing breaks\n"
    )
    bundle = bundle_of(text)
    (ws,) = bundle["workstreams"]
    assert [s["name"] for s in ws["steps"]] == ["Delete old/tool.py", "Write docs/cleanup.md"]
    assert ws["completion_criteria"] == ["nothing breaks"]
    steered = bundle_of(text, tasks_section="background")
    assert [s["name"] for s in steered["workstreams"][0]["steps"]] == ["why we do it"]


def test_unit_pattern_steers_and_heading_pattern_is_its_old_name() -> None:
    text = "# P\n\n## Chapter A\n1. do a\n\n## Chapter B\n1. do b\n"
    for option in ("unit_pattern", "heading_pattern"):
        bundle = bundle_of(text, **{option: r"^Chapter (?P<title>\w+)"})
        assert [ws["name"] for ws in bundle["workstreams"]] == ["Chapter A", "Chapter B"]


def test_plan_without_structure_is_exit_3_with_what_was_seen_and_what_to_do(
    project: Project,
) -> None:
    project.write("notes.md", "# Thoughts\n\nWe should do things.\n\n## Ideas\n\nMore prose.\n")
    res = project.uet("convert", "notes.md", "-o", "out.json")
    assert res.code == EXIT_USAGE
    text = res.out + res.err
    assert "no units of work found in notes.md" in text
    assert "2 heading(s) (Thoughts; Ideas)" in text
    for option in ("--unit-pattern", "--tasks-section", "--with"):
        assert option in text
    assert "Traceback" not in text
    assert not (project.root / "out.json").exists()


def test_explain_names_each_week_step_and_deliverable_of_k_plus_with_its_line(
    project: Project,
) -> None:
    name = "phase-K-plus-decision-context.md"
    project.write(name, (PLANS / name).read_text(encoding="utf-8"))
    res = project.uet("convert", name, "--explain")
    assert res.code == 0
    lines = res.out.splitlines()

    def line_of(needle: str) -> str:
        return next(ln for ln in lines if needle in ln)

    for n, line in zip(range(5), (35, 109, 162, 207, 256), strict=True):
        assert line_of(f"workstream w{n}-").startswith(f"{name}:{line} ")
    assert line_of("step w0-01-broken-documentation-links-74").startswith(f"{name}:45 ")
    assert "numbered item" in line_of("step w1-02-change-impact-matrix")
    deliverable = line_of("creates docs/reference/CHANGE_IMPACT_MATRIX.md")
    assert deliverable.startswith(f"{name}:151 ")
    assert "placed by path" in deliverable
    assert any("left out:" in ln for ln in lines)
    assert not (project.root / "bundle.json").exists()


def test_a_converted_plan_runs_with_the_fake_tools(project: Project, fake_tools: FakeTools) -> None:
    project.write("release.md", MILESTONES)
    res = project.uet("convert", "release.md", "--tool", "claude", "-o", "bundle.json")
    assert res.code == 0, res.out + res.err
    run = project.uet("run", "bundle.json", "--reporter", "plain")
    assert run.code == 0, run.out + run.err
    for path in ("src/lexer.py", "src/parser.py", "src/cli.py", "CHANGELOG.md"):
        assert "written by fake claude" in project.read(path)


def test_numbered_headings_are_units_when_no_unit_shape_is_there() -> None:
    text = (
        "# Site\n\n## Goals\n- be fast\n\n## 1. Setup\n- Install `tools/setup.sh`\n\n"
        "## 2. Build\n1. Write `src/app.py`\n2. Write `src/cli.py`\n"
    )
    bundle = bundle_of(text)
    assert [ws["ws_id"] for ws in bundle["workstreams"]] == ["n1-setup", "n2-build"]
    assert creates(bundle) == {"tools/setup.sh", "src/app.py", "src/cli.py"}


def test_a_coded_title_over_phases_is_the_plan_name_not_its_only_unit() -> None:
    text = "# PH-07 — GUI\n\n## Phase 1: Shell\n1. window\n\n## Phase 2: Panels\n1. panels\n"
    bundle = bundle_of(text)
    assert bundle["bundle_name"] == "PH-07 — GUI"
    assert [ws["ws_id"] for ws in bundle["workstreams"]] == ["p1-shell", "p2-panels"]


def test_plain_text_plan_with_stage_lines_and_windows_line_ends() -> None:
    text = (
        "Rollout plan\n\nStage 1: Canary\n\nFiles Created:\n- deploy/canary.yaml - config\n\n"
        "Stage 2: Everyone\n\nDependencies: Stage 1\n\n- Flip the flag\n"
    ).replace("\n", "\r\n")
    bundle = bundle_of(text, source="rollout.txt")
    assert bundle["bundle_name"] == "Rollout plan"
    first, second = bundle["workstreams"]
    assert first["steps"][0]["context"]["create_files"] == ["deploy/canary.yaml"]
    assert second["depends_on"] == [first["ws_id"]]
    assert second["steps"][0]["name"] == "Flip the flag"
    assert second["x-source"] == "rollout.txt:8"


def test_explain_says_why_sections_were_left_out(project: Project) -> None:
    project.write("release.md", MILESTONES)
    out = project.uet("convert", "release.md", "--explain").out
    assert "release.md:13    Risks  [outside every unit: not work]" in out
    assert "release.md:5     workstream m1-parser: M1 — Parser  [unit heading (level 2)]" in out
    assert "checklist item" in out


def test_paths_come_from_nested_items_and_never_leave_the_project() -> None:
    text = (
        "## Week 1: W\n1. Top item\n   - nested `n/a.py`\n     1. deeper `n/b.py`\n"
        "2. Risky `../secret.txt`, `/etc/passwd` and `My Docs/x.md`\n"
    )
    top, risky = bundle_of(text)["workstreams"][0]["steps"]
    assert top["context"]["create_files"] == ["n/a.py", "n/b.py"]
    assert "create_files" not in risky["context"]
    assert "files" not in risky["context"]


TABLES = """## Phase 1: Build

| Task | Owner | Files |
|---|---|---|
| Write the parser | ann | `src/parser.py` |
| Update docs | bob | `docs/a.md` |

## Phase 2: Ship

| Deliverable | Notes |
|---|---|
| `dist/app.tar.gz` | release |

| Risk | Mitigation |
|---|---|
| slow disks | cache |
"""


def test_tables_with_task_or_file_columns_give_steps_and_others_are_left_out() -> None:
    done = convert.convert_plan(TABLES, source="t.md")
    build, ship = done.bundle["workstreams"]
    write, update = build["steps"]
    assert write["context"]["create_files"] == ["src/parser.py"]
    assert "Owner: ann" in write["context"]["instruction"]
    assert update["context"]["files"] == ["docs/a.md"]
    assert ship["steps"][0]["context"]["create_files"] == ["dist/app.tar.gz"]
    (skipped,) = [t for t in done.traces if t.what == "skipped"]
    assert (skipped.line, skipped.rule) == (14, "table: no Task or File column")


def test_step_headings_without_units_are_the_steps_of_one_workstream() -> None:
    text = (
        "# Setup guide\n\n## Step 1: Install\nRun the installer.\n\n## Step 2: Configure\n"
        "```toml\n# config/app.toml\nx = 1\n```\n"
    )
    (ws,) = bundle_of(text)["workstreams"]
    install, configure = ws["steps"]
    assert install["name"] == "Step 1: Install"
    assert configure["context"]["create_files"] == ["config/app.toml"]
    assert "x = 1" in configure["context"]["instruction"]


def test_a_sub_heading_is_one_step_with_the_files_of_its_deliverables_section() -> None:
    text = (
        "## Phase 1: A\n\n### WS-01: Indexer\n\nScan the repo.\n\n#### Deliverables\n"
        "- `tools/indexer.py` scanner\n- `docs/INDEXER.md`\n\n## Phase 2: B\n\n"
        "### WS-02: Map\nDependencies: WS-01\n"
    )
    first, second = bundle_of(text)["workstreams"]
    (indexer,) = first["steps"]
    assert indexer["context"]["create_files"] == ["tools/indexer.py", "docs/INDEXER.md"]
    assert "Scan the repo." in indexer["context"]["instruction"]
    assert second["steps"][0]["depends_on"] == [indexer["step_id"]]


ROADMAP = """---
id: ROADMAP
status: draft
---

# Roadmap

## Milestone 0 - Setup

Goal: a skeleton.

Tasks:

- add the build in `ci/Makefile`;
- keep caches in `.cache/build` by default;

Done when:

- the build runs;

## Milestone 0.5 - Docs

Tasks:

- write `docs/index.md`.
"""


def test_roadmap_with_labelled_lists_front_matter_and_half_milestones() -> None:
    bundle = bundle_of(ROADMAP, source="roadmap.md")
    setup, docs = bundle["workstreams"]
    assert [ws["ws_id"] for ws in (setup, docs)] == ["m0-setup", "m0.5-docs"]
    make, cache = setup["steps"]
    assert make["name"] == "add the build in ci/Makefile"  # no trailing ';'
    assert make["context"]["create_files"] == ["ci/Makefile"]
    assert "create_files" not in cache["context"]  # `.cache/build`: a folder or a file?
    assert setup["completion_criteria"] == ["the build runs;"]
    assert setup["description"] == "Goal: a skeleton."
    assert docs["steps"][0]["x-source"] == "roadmap.md:25"
