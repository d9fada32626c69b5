"""Variants each family's own documents show: older or newer shapes of the same format."""

from __future__ import annotations

import json
from typing import Any

from dialect_support import edges, skipped, steps

from support import Project


def _convert(project: Project, rel: str, text: str) -> dict[str, Any]:
    project.write(rel, text)
    result = project.uet("convert", rel, "-o", "b.json")
    assert result.code == 0, result.err
    assert project.uet("validate", "b.json").code == 0
    data: dict[str, Any] = json.loads(project.read("b.json"))
    return data


def test_taskmaster_task_waits_for_a_subtask_of_another(project: Project) -> None:
    tasks = {
        "tasks": [
            {"id": 1, "title": "A", "status": "pending", "dependencies": [],
             "subtasks": [{"id": 1, "title": "A1", "status": "pending", "dependencies": []}]},
            {"id": 2, "title": "B", "status": "pending", "dependencies": ["1.1"]},
        ]
    }  # fmt: skip
    bundle = _convert(project, "tasks/tasks.json", json.dumps(tasks))
    assert edges(bundle)["2"] == ["1.1"]


def test_kiro_tasks_without_numbers(project: Project) -> None:
    plan = "# Implementation Plan\n\n- [x] Set up the repo\n- [ ] Add the model\n  - in src/m.ts\n"
    bundle = _convert(project, ".kiro/specs/x/tasks.md", plan)
    ids = list(steps(bundle))
    assert len(ids) == 2 and edges(bundle)[ids[1]] == [ids[0]]
    assert skipped(bundle) == {ids[0]: "done"}


def test_speckit_bold_ids(project: Project) -> None:
    plan = (
        "# Tasks: x\n\n## Phase 1: Setup\n\n- [ ] **T001** Create src/a.py\n"
        "- [ ] **T002** [P] Create src/b.py\n- [x] **T003**: Create src/c.py\n"
    )
    bundle = _convert(project, "specs/1/tasks.md", plan)
    assert list(steps(bundle)) == ["T001", "T002", "T003"]
    assert skipped(bundle) == {"T003": "done"}


def test_bmad_v6_status_line(project: Project) -> None:
    story = (
        "# Story 2.1: Export\n\nStatus: done\n\n## Story\n\nAs a user I export.\n\n"
        "## Acceptance Criteria\n\n1. CSV export works\n\n## Tasks / Subtasks\n\n"
        "- [ ] Task 1 (AC: #1): Create src/export.py\n  - [ ] Subtask 1.1: write it\n"
    )
    bundle = _convert(project, "stories/2.1.story.md", story)
    assert skipped(bundle) == {"2.1-task-1": "done"}  # the story is done: so are its tasks


def test_speckitty_lane_folders(project: Project) -> None:
    wp = "---\nwork_package_id: {id}\ntitle: {id}\ndependencies: [{dep}]\n---\n\nDo it.\n"
    project.write("kitty-specs/m/tasks/done/WP01-a.md", wp.format(id="WP01", dep=""))
    project.write("kitty-specs/m/tasks/planned/WP02-b.md", wp.format(id="WP02", dep="WP01"))
    result = project.uet("convert", "kitty-specs/m/tasks", "-o", "b.json")
    assert result.code == 0, result.err
    bundle = json.loads(project.read("b.json"))
    assert edges(bundle)["WP02"] == ["WP01"]
    assert skipped(bundle) == {"WP01": "done"}  # the lane is the folder it sits in
