"""spec-kit tasks.md: phases, T-ids, [P], [USn], the Dependencies prose, done items, files."""

from __future__ import annotations

import pytest
from dialect_support import CORPUS, DIALECTS, convert, edges, skipped, steps

from support import Project


def test_current_template(project: Project) -> None:
    bundle = convert(project, DIALECTS / "speckit-tasks.md")
    assert [ws["ws_id"] for ws in bundle["workstreams"]] == [f"phase-{n}" for n in range(1, 6)]
    assert list(steps(bundle)) == [f"T{n:03d}" for n in range(1, 14)]  # T099 is in a fence
    assert edges(bundle) == {
        "T001": [],
        "T002": ["T001"],
        "T003": ["T001"],  # [P]: beside T002, not after it
        "T004": [],
        "T005": ["T004"],
        "T006": [],
        "T007": [],
        "T008": ["T006", "T007", "T005"],  # after its [P] run; `T005 blocks T008`
        "T009": ["T008"],
        "T010": ["T008"],  # `T010 depends on T008`, first of its phase
        "T011": ["T010"],
        "T012": [],
        "T013": ["T012"],
        "ws:phase-1": [],  # `No dependencies`
        "ws:phase-2": ["phase-1"],
        "ws:phase-3": ["phase-2"],  # `User Stories (Phase 3+)`: after Foundational
        "ws:phase-4": ["phase-2"],
        "ws:phase-5": ["phase-3", "phase-4"],  # after all user stories
    }
    assert skipped(bundle) == {"T001": "done"}
    by_id = steps(bundle)
    assert by_id["T002"]["parallel_ok"] is True
    assert by_id["T006"]["metadata"]["story"] == "US1"
    assert by_id["T004"]["context"]["create_files"] == ["src/models/album.py"]
    assert by_id["T009"]["context"]["files"] == ["src/models/album.py"]  # Modify: an input
    assert by_id["T003"]["context"]["create_files"] == ["pyproject.toml"]
    phase2 = bundle["workstreams"][1]
    assert phase2["completion_criteria"] == [
        "Foundation ready - user story implementation can now begin"
    ]
    assert bundle["metadata"]["dialect"] == "spec-kit"
    assert by_id["T004"]["x-source"] == "speckit-tasks.md:21 (T004)"
    # the tool sees only the instruction: it says which story and where the design is
    instruction = by_id["T008"]["context"]["instruction"]
    assert "Part of Phase 3: User Story 1 - Create albums" in instruction
    assert "A user creates an album and sees it listed" in instruction
    assert "Design documents from `/specs/001-photo-albums/`" in instruction


def test_classic_template_ranges_and_blocks(project: Project) -> None:
    bundle = convert(project, DIALECTS / "speckit-classic.md")
    e = edges(bundle)
    assert e["ws:phase-3.2"] == ["phase-3.1"] and e["ws:phase-3.3"] == ["phase-3.2"]
    assert set(e["T006"]) >= {"T003", "T004", "T005"}  # Tests (T003-T005) before ...
    assert set(e["T007"]) >= {"T003", "T004", "T005", "T006"}  # ... and `T006 blocks T007`
    assert set(e["T008"]) >= {"T006", "T007"}
    assert e["T003"] == [] and e["T004"] == []


def test_explain_names_the_dialect_and_why(project: Project) -> None:
    project.write("tasks.md", (DIALECTS / "speckit-tasks.md").read_text())
    result = project.uet("convert", "tasks.md", "--explain")
    assert result.code == 0, result.err
    first = result.out.splitlines()[0]
    assert "dialect spec-kit" in first and "[ID] [P?] [Story]" in first
    assert "T008" in result.out and "after T005" in result.out


def test_forced_markdown_reads_it_the_old_way(project: Project) -> None:
    project.write("tasks.md", (DIALECTS / "speckit-tasks.md").read_text())
    result = project.uet("convert", "tasks.md", "--dialect", "markdown", "--explain")
    assert result.code == 0 and "dialect spec-kit" not in result.out


def test_unknown_dialect_is_a_usage_error(project: Project) -> None:
    project.write("tasks.md", "# x\n")
    result = project.uet("convert", "tasks.md", "--dialect", "nope")
    assert result.code == 3 and "spec-kit" in result.err and "Traceback" not in result.err


@pytest.mark.skipif(not CORPUS.is_dir(), reason="the shared corpus is not on this machine")
def test_corpus_file(project: Project) -> None:
    bundle = convert(project, CORPUS / "01-microsoft-CommunityManagement-Sample-Spec-Kit-tasks.md")
    assert len(bundle["workstreams"]) == 9 and len(steps(bundle)) == 25
    e = edges(bundle)
    assert e["T004"] == ["T001"]  # Foundational: `Depends on T001`, not all of Setup
    assert e["ws:phase-9"] == [f"phase-{n}" for n in range(3, 9)]
    assert e["ws:phase-8"] == ["phase-3"] and e["ws:phase-7"] == ["phase-4"]
    assert e["T005"] == ["T001"]  # `T004 and T005 can run in parallel after T001`
    assert e["T025"] == ["T022", "T023", "T024"]


def test_prose_tables_ranges_and_asides(project: Project) -> None:
    e = edges(convert(project, DIALECTS / "speckit-prose.md"))
    assert e["ws:phase-1"] == [] and e["ws:phase-2"] == ["phase-1"]  # no section: the order
    assert e["ws:phase-3"] == ["phase-2"]  # the table's Depends On column
    assert e["ws:phase-4"] == ["phase-2"]  # `(independent from US1 ...)` is no dependency
    assert e["ws:phase-5"] == ["phase-3", "phase-4"]  # `Phases 3-4` written with an en dash
    assert e["ws:phase-6"] == [f"phase-{n}" for n in range(1, 6)]  # `all prior phases`


def test_the_help_names_every_dialect(project: Project) -> None:
    import contextlib
    import io

    from uet_doit.cli.main import main
    from uet_doit.plans import dialects

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        main(["convert", "--help"])
    text = " ".join(out.getvalue().split())
    for name in dialects.names():
        assert name in text
    project.write("tasks.md", (DIALECTS / "speckit-tasks.md").read_text())
    forced = project.uet("convert", "tasks.md", "--dialect", "speckit", "--explain")
    assert forced.code == 0 and "forced by --dialect" in forced.out
