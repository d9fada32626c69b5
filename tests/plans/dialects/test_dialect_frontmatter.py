"""Backlog.md task files and spec-kitty work packages: one task per file, front matter read
as data; a folder of them is one plan with the edges between the files."""

from __future__ import annotations

import pytest
from dialect_support import CORPUS, DIALECTS, convert, edges, skipped, steps

from support import Project


def test_backlog_tasks_folder(project: Project) -> None:
    import shutil

    shutil.copytree(DIALECTS / "backlog", project.root / "backlog")
    result = project.uet("convert", "backlog/tasks", "-o", "b.json")
    assert result.code == 0, result.err
    assert project.uet("validate", "b.json").code == 0
    import json

    bundle = json.loads(project.read("b.json"))
    assert list(steps(bundle)) == ["TASK-1", "TASK-2", "TASK-3"]
    e = edges(bundle)
    assert e["TASK-2"] == ["TASK-1"]  # `task-1`: ids match case-blind
    assert e["TASK-3"] == ["TASK-1", "TASK-2"]
    assert skipped(bundle) == {"TASK-1": "done"}
    by_id = steps(bundle)
    assert by_id["TASK-2"]["scope"] == ["src/cli.ts"]
    assert by_id["TASK-2"]["validation"] == {"test_command": ["bun", "test"]}
    assert by_id["TASK-2"]["metadata"]["criteria"] == ["`--config` is read", "`bun test` passes"]
    assert by_id["TASK-2"]["context"]["create_files"] == ["src/cli/main.ts"]
    assert by_id["TASK-3"]["context"]["create_files"] == ["docs/cli.md"]


def test_speckitty_tasks_folder(project: Project) -> None:
    import json
    import shutil

    shutil.copytree(DIALECTS / "kitty", project.root / "kitty-specs" / "m1")
    result = project.uet("convert", "kitty-specs/m1/tasks", "-o", "b.json", "--explain")
    assert result.code == 0, result.err
    assert "dialect spec-kitty" in result.out
    result = project.uet("convert", "kitty-specs/m1/tasks", "-o", "b.json")
    assert result.code == 0 and project.uet("validate", "b.json").code == 0
    bundle = json.loads(project.read("b.json"))
    assert [ws["ws_id"] for ws in bundle["workstreams"]] == [
        "phase-1-foundation",
        "phase-2-api",
    ]
    e = edges(bundle)
    assert e["WP02"] == ["WP01"] and e["WP03"] == ["WP01"]
    assert skipped(bundle) == {"WP01": "done"}
    by_id = steps(bundle)
    assert by_id["WP02"]["scope"] == ["src/api/users.py", "src/api/**"]
    assert by_id["WP02"]["validation"] == {"test_command": ["pytest", "tests/api", "-q"]}
    assert by_id["WP01"]["metadata"]["criteria"][0] == "The model validates e-mail addresses"
    assert by_id["WP03"]["metadata"]["status"] == "in-progress"


@pytest.mark.skipif(not CORPUS.is_dir(), reason="the shared corpus is not on this machine")
def test_corpus_files(project: Project) -> None:
    backlog = convert(project, next(CORPUS.glob("13-*.md")))
    step = steps(backlog)["BACK-355.04"]
    assert step["skip"] == "done" and len(step["scope"]) == 19
    assert len(step["metadata"]["criteria"]) == 6
    kitty = convert(
        project, CORPUS / "15-Priivacy-ai-spec-kitty-WP05-coord-worktree-helper-governance.md"
    )
    wp = steps(kitty)["WP05"]
    assert "src/specify_cli/coordination/commit_router.py" in wp["scope"]
    assert wp["metadata"]["subtasks"] == ["T020", "T021", "T022", "T023"]
    assert wp["validation"]["test_command"][0] == "pytest"


def test_scope_outside_the_project_is_left_out(project: Project) -> None:
    import json

    project.write(
        "kitty-specs/m/tasks/WP01-x.md",
        "---\nwork_package_id: WP01\ntitle: X\n"
        "owned_files: [src/a.py, /etc/passwd, ../up.py]\n---\n",
    )
    result = project.uet("convert", "kitty-specs/m/tasks/WP01-x.md", "-o", "b.json")
    assert result.code == 0 and "outside the project" in result.err
    assert steps(json.loads(project.read("b.json")))["WP01"]["scope"] == ["src/a.py"]
