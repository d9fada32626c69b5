"""Kiro and OpenSpec tasks.md: numbered checklists whose order is their sequence."""

from __future__ import annotations

from typing import Any

import pytest
from dialect_support import CORPUS, DIALECTS, convert, edges, skipped, steps

from support import Project


@pytest.fixture
def kiro(project: Project) -> dict[str, Any]:
    source = DIALECTS / "kiro" / ".kiro" / "specs" / "search" / "tasks.md"
    target = project.write(".kiro/specs/search/tasks.md", source.read_text())
    result = project.uet("convert", str(target.relative_to(project.root)), "-o", "bundle.json")
    assert result.code == 0, result.err
    assert "Kiro" in result.err
    assert project.uet("validate", "bundle.json").code == 0
    import json

    data: dict[str, Any] = json.loads(project.read("bundle.json"))
    return data


def test_kiro_groups_items_and_order(kiro: dict[str, Any]) -> None:
    bundle = kiro
    assert [ws["ws_id"] for ws in bundle["workstreams"]] == ["task-1", "task-2", "task-3"]
    assert list(steps(bundle)) == ["1", "2.1", "2.2", "2.3", "3.1", "3.2"]
    e = edges(bundle)
    assert e["2.2"] == ["2.1"] and e["2.3"] == ["2.2"] and e["3.2"] == ["3.1"]
    assert e["ws:task-2"] == ["task-1"] and e["ws:task-3"] == ["task-2"]
    assert skipped(bundle) == {"1": "done", "2.1": "done"}
    by_id = steps(bundle)
    assert by_id["2.2"]["metadata"]["status"] == "in-progress"
    assert by_id["2.3"]["metadata"]["optional"] is True
    assert by_id["2.1"]["metadata"]["requirements"] == ["2.1", "3.3"]
    assert by_id["2.2"]["context"]["create_files"] == ["src/models/user.ts"]
    assert by_id["2.2"]["context"]["files"] == ["src/models/types.ts"]
    assert by_id["3.2"]["context"]["files"] == ["src/api/routes.ts"]
    assert "Parse the query" in by_id["3.1"]["context"]["instruction"]


def test_openspec(project: Project) -> None:
    target = project.write(
        "openspec/changes/add-2fa/tasks.md",
        (DIALECTS / "openspec" / "changes" / "add-2fa" / "tasks.md").read_text(),
    )
    result = project.uet("convert", str(target.relative_to(project.root)), "-o", "b.json")
    assert result.code == 0, result.err
    assert "OpenSpec" in result.err and project.uet("validate", "b.json").code == 0
    import json

    bundle = json.loads(project.read("b.json"))
    assert [ws["name"] for ws in bundle["workstreams"]] == [
        "1. Database",
        "2. Implementation",
        "3. Testing",
    ]
    assert list(steps(bundle)) == ["1.1", "1.2", "2.1", "2.2", "3.1"]
    e = edges(bundle)
    assert e["1.2"] == ["1.1"] and e["2.2"] == ["2.1"] and e["ws:task-3"] == ["task-2"]
    assert skipped(bundle) == {"1.1": "done"}
    assert steps(bundle)["1.1"]["context"]["create_files"] == ["db/migrations/002_otp.sql"]


@pytest.mark.skipif(not CORPUS.is_dir(), reason="the shared corpus is not on this machine")
def test_kiro_corpus_file(project: Project) -> None:
    bundle = convert(project, CORPUS / "02-RockyBoyRC-SpaceWeirdos-tasks.md")
    assert len(bundle["workstreams"]) == 14
    assert len(steps(bundle)) == 37
    assert len(skipped(bundle)) == 37  # every item is ticked
    assert edges(bundle)["ws:task-14"] == ["task-13"]


def test_openspec_plain_checkboxes(project: Project) -> None:
    rel = "openspec/changes/plain/tasks.md"
    target = project.write(
        rel, (DIALECTS / "openspec" / "changes" / "plain" / "tasks.md").read_text()
    )
    result = project.uet("convert", str(target.relative_to(project.root)), "-o", "b.json")
    assert result.code == 0 and "OpenSpec" in result.err, result.err
    import json

    bundle = json.loads(project.read("b.json"))
    assert [ws["name"] for ws in bundle["workstreams"]] == ["Spec tasks", "Implementation tasks"]
    ids = list(steps(bundle))
    assert len(ids) == 4  # the nested checkboxes are the instruction of `Tests: ...`
    assert "downgrades are rejected" in steps(bundle)[ids[3]]["context"]["instruction"]
    assert edges(bundle)[ids[3]] == [ids[2]] and len(skipped(bundle)) == 1
