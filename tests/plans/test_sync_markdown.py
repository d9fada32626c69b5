"""`uet run --sync-plan` on a generic markdown plan (`uet convert plan.md`): the checkbox of
each landed step (and of the deliverables placed in it) is ticked; a step made from a heading
or a plain item is left as is and said so; nothing else in the file changes, byte for byte."""

from __future__ import annotations

import json
from typing import Any

from support import Project

CHECKLIST = (
    "# Release\r\n"
    "\r\n"
    "## Week 1: Build\r\n"
    "\r\n"
    "### Tasks\r\n"
    "\r\n"
    "- [ ] Write the greeting\r\n"
    "- [ ] Write the farewell\r\n"
    "- [x] Pick a name\r\n"
    "\r\n"
    "```\r\n"
    "- [ ] Write the greeting\r\n"
    "```\r\n"
    "\r\n"
    "## Week 2: Ship\r\n"
    "\r\n"
    "### Tasks\r\n"
    "\r\n"
    "1. [ ] Tag the release\r\n"
)

HEADINGS = """# Plan

## Week 1: Storage

### Task 1: Create the schema

Write db/schema.sql.

### Task 2: Add the migration

Write the migration script.

### Deliverables

- [ ] `db/migrate.py`: the migration script

## Week 2: API

- [ ] Write the handler in `api/handler.py`

Deliverables:

- [ ] `api/handler.py`: the handler
"""


def _as_shell(project: Project, fail: tuple[str, ...] = ()) -> dict[str, str]:
    """Shell commands for the converted steps; the step id of each by its name."""
    data: dict[str, Any] = json.loads(project.read("bundle.json"))
    ids = {}
    for ws in data["workstreams"]:
        for step in ws["steps"]:
            ids[step["name"]] = step["step_id"]
            step["tool_profile_id"] = "shell"
            step["context"]["command"] = "exit 1" if step["name"] in fail else "true"
            step["context"].pop("create_files", None)
    project.write("bundle.json", json.dumps(data, indent=2))
    return ids


def test_landed_checkboxes_are_ticked_crlf_kept(project: Project) -> None:
    (project.root / "docs").mkdir()
    (project.root / "docs/release.md").write_bytes(CHECKLIST.encode())
    assert project.uet("convert", "docs/release.md", "-o", "bundle.json").code == 0
    ids = _as_shell(project, fail=("Write the farewell",))
    result = project.uet("run", "bundle.json", "--sync-plan", "-c")
    assert result.code == 1, result.out + result.err
    assert f"marked done in the plan: {ids['Write the greeting']}" in result.out
    # Week 2 waits for Week 1, which failed: its item stays open
    expected = CHECKLIST.replace("\r\n- [ ] Write the greeting", "\r\n- [x] Write the greeting", 1)
    assert (project.root / "docs/release.md").read_bytes() == expected.encode()


def test_a_heading_step_is_left_as_is_deliverables_are_ticked(project: Project) -> None:
    project.write("plan.md", HEADINGS)
    assert project.uet("convert", "plan.md", "-o", "bundle.json").code == 0
    ids = _as_shell(project)
    result = project.uet("run", "bundle.json", "--sync-plan")
    assert result.code == 0, result.out + result.err
    assert "left as is (no checkbox in the plan to tick)" in result.out
    assert f"{ids['Task 1: Create the schema']} (plan.md:5, a heading)" in result.out
    ticked = f"{ids['Task 2: Add the migration']}, {ids['Write the handler in api/handler.py']}"
    assert f"marked done in the plan: {ticked}" in result.out
    # the heading steps' headings are not touched; a task's box and its deliverable's are
    assert project.read("plan.md") == HEADINGS.replace("- [ ]", "- [x]")


def test_lines_moved_the_text_is_found_edited_is_reported(project: Project) -> None:
    plan = "# Plan\n\n## Tasks\n\n- [ ] Write the greeting\n- [ ] Write the farewell\n"
    project.write("plan.md", plan)
    assert project.uet("convert", "plan.md", "-o", "bundle.json").code == 0
    ids = _as_shell(project)
    edited = plan.replace("## Tasks\n", "## Tasks\n\nTwo lines added.\n").replace(
        "the farewell", "a warm farewell"
    )
    project.write("plan.md", edited)
    result = project.uet("run", "bundle.json", "--sync-plan")
    assert result.code == 0, result.out + result.err
    assert f"marked done in the plan: {ids['Write the greeting']}" in result.out
    assert (
        f"not marked (the plan changed since conversion): {ids['Write the farewell']}" in result.out
    )
    assert project.read("plan.md") == edited.replace(
        "- [ ] Write the greeting", "- [x] Write the greeting"
    )


def test_a_byte_order_mark_is_kept(project: Project) -> None:
    plan = "1. [ ] Write the greeting\n2. [ ] Write the farewell\n"
    (project.root / "todo-list.md").write_bytes(("\ufeff# Todo\n\n## Tasks\n\n" + plan).encode())
    assert project.uet("convert", "todo-list.md", "-o", "bundle.json").code == 0
    _as_shell(project)
    assert project.uet("run", "bundle.json", "--sync-plan").code == 0
    ticked = "\ufeff# Todo\n\n## Tasks\n\n" + plan.replace("[ ]", "[x]")
    assert (project.root / "todo-list.md").read_bytes() == ticked.encode()


def test_a_step_whose_deliverable_changed_is_not_half_ticked(project: Project) -> None:
    project.write("plan.md", HEADINGS)
    assert project.uet("convert", "plan.md", "-o", "bundle.json").code == 0
    ids = _as_shell(project)
    edited = HEADINGS.replace("`api/handler.py`: the handler", "`api/handler.py`: the router")
    project.write("plan.md", edited)
    result = project.uet("run", "bundle.json", "--sync-plan")
    assert result.code == 0, result.out + result.err
    step = ids["Write the handler in api/handler.py"]
    assert f"not marked (the plan changed since conversion): {step}" in result.out
    # its own box stays open too: a step is ticked whole or not at all
    expected = edited.replace("- [ ] `db/migrate.py`", "- [x] `db/migrate.py`")
    assert project.read("plan.md") == expected
