"""Cursor plans, superpowers plans, Conductor tracks, Codex ExecPlans, BMAD stories, Ralph's
IMPLEMENTATION_PLAN.md and agent TODO lists: small plans of our own in each dialect."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from dialect_support import DIALECTS, edges, skipped, steps

from support import Project


def _convert(project: Project, rel: str, source: Path) -> tuple[dict[str, Any], str]:
    target = project.root / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    result = project.uet("convert", rel, "-o", "bundle.json")
    assert result.code == 0, result.out + result.err
    assert project.uet("validate", "bundle.json").code == 0
    import json

    return json.loads(project.read("bundle.json")), result.err


def test_cursor_plan(project: Project) -> None:
    bundle, err = _convert(project, ".cursor/plans/search.plan.md", DIALECTS / "cursor.plan.md")
    assert "Cursor" in err
    assert list(steps(bundle)) == ["schema", "indexer", "api", "docs"]
    e = edges(bundle)
    assert e["indexer"] == ["schema"]  # mermaid
    assert e["api"] == ["indexer", "schema"]
    assert e["docs"] == ["api"]  # front matter dependencies
    assert skipped(bundle) == {"schema": "done"}
    assert steps(bundle)["indexer"]["metadata"]["status"] == "in-progress"
    assert steps(bundle)["api"]["context"]["files"] == ["src/api/routes.py"]
    assert bundle["workstreams"][0]["description"].startswith("Full-text search")
    assert bundle["workstreams"][0]["completion_criteria"][0] == "A query returns matching notes"
    assert "flowchart TD" in steps(bundle)["api"]["context"]["instruction"]  # the plan goes along


def test_superpowers_plan(project: Project) -> None:
    bundle, err = _convert(
        project, "docs/plans/2025-01-01-slugs.md", DIALECTS / "superpowers-plan.md"
    )
    assert "superpowers" in err
    assert list(steps(bundle)) == ["task-1", "task-2"]
    assert edges(bundle)["task-2"] == ["task-1"]
    assert skipped(bundle) == {"task-1": "done"}  # every step ticked
    by_id = steps(bundle)
    assert by_id["task-1"]["context"]["create_files"] == ["src/slugs/slug.py", "tests/test_slug.py"]
    assert by_id["task-2"]["context"]["files"] == ["src/app/router.py"]
    assert by_id["task-2"]["validation"] == {
        "test_command": [
            "env",
            "UV_PROJECT_ENVIRONMENT=.venv",
            "uv",
            "run",
            "pytest",
            "tests/test_router.py",
            "-v",
        ]
    }
    assert 'assert route("A B") == "/a-b"' in by_id["task-2"]["context"]["instruction"]


def test_conductor_track(project: Project) -> None:
    rel = "conductor/tracks/auth_20250101/plan.md"
    bundle, err = _convert(project, rel, DIALECTS / rel)
    assert "Conductor" in err
    assert list(steps(bundle)) == ["1.1", "1.2", "2.1", "2.2"]
    e = edges(bundle)
    assert e["1.2"] == ["1.1"] and e["2.2"] == ["2.1"] and e["ws:phase-2"] == ["phase-1"]
    assert skipped(bundle) == {"1.1": "done", "1.2": "done"}
    by_id = steps(bundle)
    assert by_id["1.1"]["metadata"]["commit"] == "a1b2c3d"
    assert by_id["1.2"]["metadata"]["commit"] == "9f8e7d6"  # Conductor also writes it bare
    assert by_id["2.1"]["metadata"]["status"] == "in-progress"
    assert "Write tests" in by_id["2.1"]["context"]["instruction"]
    assert by_id["2.2"]["context"]["files"] == ["src/app.py"]


def test_execplan(project: Project) -> None:
    bundle, err = _convert(project, "plans/health.md", DIALECTS / "execplan.md")
    assert "ExecPlan" in err
    ids = list(steps(bundle))
    assert len(ids) == 3
    assert edges(bundle)[ids[1]] == [ids[0]] and edges(bundle)[ids[2]] == [ids[1]]
    assert skipped(bundle) == {ids[0]: "done"}
    by_id = steps(bundle)
    assert by_id[ids[1]]["metadata"]["status"] == "in-progress"
    assert by_id[ids[2]]["validation"] == {"test_command": ["pytest", "tests/test_health.py"]}
    assert "Plan of Work" in by_id[ids[1]]["context"]["instruction"]
    assert len(bundle["workstreams"][0]["completion_criteria"]) == 2


def test_bmad_story(project: Project) -> None:
    bundle, err = _convert(project, "docs/stories/1.2.story.md", DIALECTS / "1.2.story.md")
    assert "BMAD" in err
    assert list(steps(bundle)) == ["1.2-task-1", "1.2-task-2", "1.2-task-3"]
    e = edges(bundle)
    assert e["1.2-task-2"] == ["1.2-task-1"] and e["1.2-task-3"] == ["1.2-task-2"]
    assert skipped(bundle) == {"1.2-task-1": "done"}
    ws = bundle["workstreams"][0]
    assert ws["completion_criteria"] == [
        "A reset link is sent by e-mail",
        "The link expires after one hour",
    ]
    by_id = steps(bundle)
    assert by_id["1.2-task-2"]["metadata"]["acceptance_criteria"] == ["1", "2"]
    assert by_id["1.2-task-2"]["context"]["files"] == ["src/auth/routes.py"]


def test_ralph_plan(project: Project) -> None:
    bundle, err = _convert(project, "IMPLEMENTATION_PLAN.md", DIALECTS / "IMPLEMENTATION_PLAN.md")
    assert "Ralph" in err
    assert [ws["name"] for ws in bundle["workstreams"]] == ["High priority", "Later"]
    assert bundle["workstreams"][0]["priority"] == "high"
    names = {s["name"]: s for s in steps(bundle).values()}
    assert len(names) == 3  # the struck bullet is not a checkbox item: no step
    fix = names["Fix the crash in src/parser.py on empty input"]
    assert fix["skip"] == "done"
    retry = names["Add retries to `src/net/client.py`"]
    assert retry["depends_on"] == [fix["step_id"]]
    assert "backoff" in retry["context"]["instruction"]


def test_agent_todo_lists(project: Project) -> None:
    bundle, err = _convert(project, "todos.json", DIALECTS / "claude-todos.json")
    assert "todos" in err
    ids = list(steps(bundle))
    assert len(ids) == 3 and edges(bundle)[ids[2]] == [ids[1]]
    assert skipped(bundle) == {ids[0]: "done"}
    bundle, err = _convert(project, "TODO.md", DIALECTS / "TODO.md")
    assert "TODO" in err and len(steps(bundle)) == 2 and len(skipped(bundle)) == 1


def test_update_keeps_the_ids_of_unchanged_items(project: Project) -> None:
    import json

    plan = "# Plan\n\n## Now\n\n- [ ] Fix the parser\n- [ ] Fix the parser\n- [ ] Ship it\n"
    project.write("TODO.md", plan)
    assert project.uet("convert", "TODO.md", "-o", "bundle.json").code == 0
    before = json.loads(project.read("bundle.json"))
    old = {s["metadata"]["source_id"]: s["step_id"] for s in steps(before).values()}
    project.write("TODO.md", plan.replace("- [ ] Ship it", "- [ ] Add a changelog\n- [ ] Ship it"))
    result = project.uet("convert", "TODO.md", "-o", "bundle.json", "--update")
    assert result.code == 0, result.err
    after = json.loads(project.read("bundle.json"))
    new = {s["metadata"]["source_id"]: s["step_id"] for s in steps(after).values()}
    assert {k: new[k] for k in old} == old
    assert len(new) == 4


def test_update_needs_the_output_bundle(project: Project) -> None:
    project.write("TODO.md", "- [ ] a\n- [ ] b\n")
    result = project.uet("convert", "TODO.md", "--update")
    assert result.code == 3 and "-o" in result.err
