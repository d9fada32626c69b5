"""Task Master tasks.json and Beads issues.jsonl: read as data, every edge kept."""

from __future__ import annotations

import pytest
from dialect_support import CORPUS, DIALECTS, convert, edges, skipped, steps

from support import Project


def test_taskmaster_tagged(project: Project) -> None:
    bundle = convert(project, DIALECTS / "taskmaster-tagged.json")
    assert [ws["ws_id"] for ws in bundle["workstreams"]] == [
        "master-task-1",
        "master-task-2",
        "master-task-3",
        "master-task-4",
        "master-task-5",
        "feature-x-task-1",
    ]
    e = edges(bundle)
    assert e["ws:master-task-2"] == ["master-task-1"]
    assert e["ws:master-task-3"] == ["master-task-1"]
    assert e["ws:master-task-5"] == ["master-task-3"]
    assert e["master-2.2"] == ["master-2.1"]
    assert e["master-2.3"] == ["master-2.1", "master-3.1"]  # a sibling and another task's subtask
    assert skipped(bundle) == {
        "master-1": "done",
        "master-2.1": "done",
        "master-4": "cancelled",
        "master-5": "deferred",
    }
    by_id = steps(bundle)
    assert by_id["master-1"]["validation"] == {"test_command": ["pytest", "-q"]}
    assert "validation" not in by_id["master-2.1"]  # `Manual check` is no command
    assert bundle["workstreams"][1]["completion_criteria"] == ["Manual check of the endpoints."]
    assert by_id["master-2.1"]["context"]["create_files"] == ["src/app/routes.py"]
    assert by_id["master-2.2"]["context"]["files"] == ["src/app/routes.py"]
    assert by_id["master-2.2"]["metadata"]["source_item"] == {
        "kind": "json",
        "pointer": ["master", "tasks", 1, "subtasks", 1],
        "id": 2,
        "done": "done",
        "file": "taskmaster-tagged.json",
    }
    assert bundle["workstreams"][0]["priority"] == "high"


def test_beads(project: Project) -> None:
    bundle = convert(project, DIALECTS / "beads-issues.jsonl")
    assert [ws["ws_id"] for ws in bundle["workstreams"]] == ["bd-a1", "bd-b7", "issues"]
    assert list(steps(bundle)) == ["bd-a1.1", "bd-a1.2", "bd-b7.1", "bd-c3"]  # tombstone gone
    e = edges(bundle)
    assert e["bd-a1.2"] == ["bd-a1.1"]
    assert e["ws:bd-b7"] == ["bd-a1"]  # epic blocked by epic
    assert e["bd-b7.1"] == []  # `related` is a link, not an order
    assert e["bd-c3"] == ["bd-a1.2"]
    assert skipped(bundle) == {"bd-a1.1": "done"}
    by_id = steps(bundle)
    assert by_id["bd-a1.2"]["metadata"]["status"] == "in-progress"
    assert by_id["bd-a1.2"]["metadata"]["criteria"] == ["returns hits", "under 100 ms"]
    assert by_id["bd-a1.1"]["context"]["create_files"] == ["src/search/index.py"]
    assert bundle["workstreams"][0]["priority"] == "high"


def test_bad_json_line_names_the_file(project: Project) -> None:
    project.write(".beads/issues.jsonl", '{"id":"a","title":"t","status":"open"}\n{oops\n')
    result = project.uet("convert", ".beads/issues.jsonl", "--dialect", "beads")
    assert result.code == 3 and "issues.jsonl" in result.err and "Traceback" not in result.err


@pytest.mark.skipif(not CORPUS.is_dir(), reason="the shared corpus is not on this machine")
def test_corpus_files(project: Project) -> None:
    tm = convert(project, CORPUS / "05-AojdevStudio-dental-dashboard-tasks.json")
    assert len(tm["workstreams"]) == 10 and len(steps(tm)) == 16
    e = edges(tm)
    assert e["ws:task-3"] == ["task-1", "task-2"] and e["ws:task-10"] == [
        "task-7",
        "task-8",
        "task-9",
    ]
    assert e["5.3"] == ["5.1", "5.2"]
    assert len(skipped(tm)) == 6  # tasks 1-3 and the three subtasks of 4
    beads = convert(project, CORPUS / "07-NVIDIA-skyhook-issues.jsonl")
    assert list(steps(beads)) == [f"skyhook-gld.{n}" for n in range(1, 7)]
    eb = edges(beads)
    assert eb["skyhook-gld.6"] == [f"skyhook-gld.{n}" for n in range(1, 6)]
    assert len(skipped(beads)) == 6


def test_broken_task_master_file_names_the_place(project: Project) -> None:
    project.write(".taskmaster/tasks/tasks.json", '{"tasks": [\n  {"id": 1, "title": "A",}\n]}\n')
    result = project.uet("convert", ".taskmaster/tasks/tasks.json")
    assert result.code == 3 and "line 2" in result.err and "Traceback" not in result.err


def test_broken_beads_line_is_named_without_forcing(project: Project) -> None:
    project.write(".beads/issues.jsonl", '{"id":"a","title":"t","status":"open"}\n{oops\n')
    result = project.uet("convert", ".beads/issues.jsonl")
    assert result.code == 3 and "issues.jsonl:2" in result.err
