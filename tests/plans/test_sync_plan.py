"""`uet run --sync-plan`: the items whose steps succeeded are marked done in the source plan,
and nothing else in it changes, byte for byte."""

from __future__ import annotations

import json
from typing import Any

from support import Project

SPECKIT = """# Tasks: demo

## Format: `[ID] [P?] [Story] Description`

## Phase 1: Setup

- [ ] T001 Create the greeting
- [ ] T002 [P] Create the farewell
- [x] T003 Done before we started

## Phase 2: Core

- [ ] T004 Combine them\r
"""

TASKMASTER = """{
  "tasks": [
    {"id": 1, "title": "One", "status":   "pending", "dependencies": []},
    {"id": 2, "title": "Two", "status": "pending", "dependencies": [],
     "subtasks": [
        {"id": 1, "title": "Two a", "status": "pending", "dependencies": []},
        {"id": 2, "title": "Two b", "status" : "pending", "dependencies": [1]}
     ]},
    {"id": 3, "title": "Three \\u00e9", "status": "pending", "dependencies": [2]},
    {"id": 4, "title": "Four", "status": "pending", "dependencies": []}
  ]
}
"""


def _as_shell(project: Project, commands: dict[str, str]) -> None:
    """Give the converted steps shell commands (the test's stand-in for an AI tool)."""
    data: dict[str, Any] = json.loads(project.read("bundle.json"))
    for ws in data["workstreams"]:
        for step in ws["steps"]:
            step["tool_profile_id"] = "shell"
            step["context"]["command"] = commands.get(step["step_id"], "true")
    project.write("bundle.json", json.dumps(data, indent=2))


def test_speckit_items_that_landed_are_ticked(project: Project) -> None:
    project.write("specs/001/tasks.md", SPECKIT)
    assert project.uet("convert", "specs/001/tasks.md", "-o", "bundle.json").code == 0
    _as_shell(project, {"T002": "exit 1"})
    result = project.uet("run", "bundle.json", "--sync-plan", "-c")
    assert result.code == 1  # T002 failed; T004 waits for it
    assert "marked done in the plan: T001" in result.out
    expected = SPECKIT.replace("- [ ] T001", "- [x] T001")
    assert (project.root / "specs/001/tasks.md").read_bytes() == expected.encode()


def test_taskmaster_statuses_that_landed_are_done(project: Project) -> None:
    project.write(".taskmaster/tasks/tasks.json", TASKMASTER)
    assert project.uet("convert", ".taskmaster/tasks/tasks.json", "-o", "bundle.json").code == 0
    _as_shell(project, {"4": "exit 1"})
    result = project.uet("run", "bundle.json", "--sync-plan", "-c")
    assert result.code == 1
    expected = (
        TASKMASTER.replace('"One", "status":   "pending"', '"One", "status":   "done"')
        .replace('"Two", "status": "pending"', '"Two", "status": "done"')
        .replace('"Two a", "status": "pending"', '"Two a", "status": "done"')
        .replace('"Two b", "status" : "pending"', '"Two b", "status" : "done"')
        .replace('"Three \\u00e9", "status": "pending"', '"Three \\u00e9", "status": "done"')
    )
    assert project.read(".taskmaster/tasks/tasks.json") == expected  # task 2: all its subtasks


def test_a_changed_item_is_reported_not_overwritten(project: Project) -> None:
    project.write("specs/001/tasks.md", SPECKIT)
    assert project.uet("convert", "specs/001/tasks.md", "-o", "bundle.json").code == 0
    _as_shell(project, {})
    edited = SPECKIT.replace("T001 Create the greeting", "T001 Create a warmer greeting")
    project.write("specs/001/tasks.md", edited)
    result = project.uet("run", "bundle.json", "--sync-plan")
    assert result.code == 0, result.out + result.err
    assert "not marked (the plan changed since conversion): T001" in result.out
    assert "- [x] T002" in project.read("specs/001/tasks.md")
    assert "- [ ] T001 Create a warmer greeting" in project.read("specs/001/tasks.md")


def test_beads_issue_is_closed(project: Project) -> None:
    line1 = '{"id":"bd-1","title":"A","status":"open","issue_type":"task"}'
    line2 = '{"id":"bd-2","title":"B","status":"open","issue_type":"task","priority":2}'
    project.write(".beads/issues.jsonl", f"{line1}\n{line2}\n")
    assert project.uet("convert", ".beads/issues.jsonl", "-o", "bundle.json").code == 0
    _as_shell(project, {"bd-2": "exit 1"})
    project.uet("run", "bundle.json", "--sync-plan", "-c")
    closed = line1.replace('"status":"open"', '"status":"closed"')
    assert project.read(".beads/issues.jsonl") == f"{closed}\n{line2}\n"


KIRO = """# Implementation Plan

- [ ] 1. Storage
- [ ] 1.1 Create the schema
- [ ] 1.2 Add the migration
- [ ] 2. API
- [ ] 2.1 Add the endpoint
"""


def test_kiro_parent_is_ticked_when_all_its_items_land(project: Project) -> None:
    project.write(".kiro/specs/x/tasks.md", KIRO)
    assert project.uet("convert", ".kiro/specs/x/tasks.md", "-o", "bundle.json").code == 0
    _as_shell(project, {"2.1": "exit 1"})
    project.uet("run", "bundle.json", "--sync-plan", "-c")
    expected = KIRO.replace("- [ ] 1.", "- [x] 1.")  # 1., 1.1, 1.2; not 2. nor 2.1
    assert project.read(".kiro/specs/x/tasks.md") == expected


BACKLOG = """---
id: task-7
title: Add the export
status: To Do
dependencies: []
---

Write the exporter.
"""

CURSOR = """---
name: Search
todos:
  - id: index
    content: Build the index
    status: pending
  - id: api
    content: Add the API
    status: pending
    dependencies: [index]
---

# Search
"""


def test_front_matter_statuses_are_set(project: Project) -> None:
    project.write("backlog/tasks/task-7 - Add-the-export.md", BACKLOG)
    assert project.uet("convert", "backlog/tasks", "-o", "bundle.json").code == 0
    data = json.loads(project.read("bundle.json"))
    data["metadata"]["sync_plan"] = True  # the bundle setting instead of --sync-plan
    project.write("bundle.json", json.dumps(data))
    _as_shell(project, {})
    assert project.uet("run", "bundle.json").code == 0
    expected = BACKLOG.replace("status: To Do", "status: Done")
    assert project.read("backlog/tasks/task-7 - Add-the-export.md") == expected


def test_cursor_todo_status_is_completed(project: Project) -> None:
    project.write(".cursor/plans/search.plan.md", CURSOR)
    assert project.uet("convert", ".cursor/plans/search.plan.md", "-o", "bundle.json").code == 0
    _as_shell(project, {"api": "exit 1"})
    project.uet("run", "bundle.json", "--sync-plan", "-c")
    expected = CURSOR.replace(
        "content: Build the index\n    status: pending",
        "content: Build the index\n    status: completed",
    )
    assert project.read(".cursor/plans/search.plan.md") == expected


def test_a_plan_outside_the_project_is_never_written(
    project: Project, tmp_path_factory: Any
) -> None:
    outside = tmp_path_factory.mktemp("elsewhere") / "tasks.md"
    outside.write_bytes(SPECKIT.encode())
    project.write("specs/001/tasks.md", SPECKIT)
    assert project.uet("convert", "specs/001/tasks.md", "-o", "bundle.json").code == 0
    data = json.loads(project.read("bundle.json"))
    for ws in data["workstreams"]:
        for step in ws["steps"]:
            step["metadata"]["source_item"]["file"] = str(outside)
    project.write("bundle.json", json.dumps(data))
    _as_shell(project, {})
    result = project.uet("run", "bundle.json", "--sync-plan")
    assert "outside the project" in result.out
    assert outside.read_bytes() == SPECKIT.encode()
