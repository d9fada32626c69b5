"""Every broken bundle exits 3 through `uet validate`, naming file, place and problem."""

from __future__ import annotations

import json
import os
import shutil

import pytest
import yaml

from support import FIXTURES, Project

INVALID = FIXTURES / "bundles" / "invalid"
EXPECTED: dict[str, list[str]] = yaml.safe_load((INVALID / "expected.yaml").read_text())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_invalid_bundle_is_explained(project: Project, name: str) -> None:
    shutil.copy(INVALID / name, project.root / name)
    os.symlink("/tmp", project.root / "link")  # for escaping_paths: a symlink out of the root
    result = project.uet("validate", name)
    assert result.code == 3
    assert "Traceback" not in result.err
    for fragment in EXPECTED[name]:
        assert fragment in result.err, f"{fragment!r} missing from:\n{result.err}"


def test_every_fixture_has_expectations() -> None:
    files = {p.name for p in INVALID.iterdir() if p.name != "expected.yaml"}
    assert files == set(EXPECTED)


def test_all_problems_are_reported_at_once(project: Project) -> None:
    shutil.copy(INVALID / "escaping_paths.yaml", project.root / "b.yaml")
    os.symlink("/tmp", project.root / "link")
    result = project.uet("validate", "b.yaml")
    assert "ERROR: 4 problem(s)" in result.err


def test_valid_and_invalid_files_in_one_call(project: Project) -> None:
    project.write(
        "ok.yaml",
        "bundle_id: ok\nworkstreams:\n  - ws_id: W\n    steps:\n"
        "      - {step_id: s, command: 'true'}\n",
    )
    shutil.copy(INVALID / "cycle.yaml", project.root / "cycle.yaml")
    result = project.uet("validate", "ok.yaml", "cycle.yaml")
    assert result.code == 3
    assert "ok.yaml: ok (ok: 1 workstreams, 1 steps)" in result.out
    assert "cycle.yaml" in result.err


def test_reading_another_steps_output_adds_the_edge(project: Project) -> None:
    from uet_doit.bundle.graph import build_graph
    from uet_doit.bundle.loader import load_bundle
    from uet_doit.tools.routing import default_known_tools

    project.write(
        "b.yaml",
        "bundle_id: x\nworkstreams:\n  - ws_id: W\n    steps:\n"
        "      - {step_id: reader, command: 'true', files: [gen/a.txt]}\n"
        "      - {step_id: writer, command: 'true', create_files: [gen/a.txt]}\n",
    )
    bundle = load_bundle(project.root / "b.yaml", project.root, known_tools=default_known_tools())
    graph = build_graph(bundle)
    assert graph.implied["reader"] == ["writer"]
    assert graph.order().index("writer") < graph.order().index("reader")


def test_did_you_mean_never_suggests_the_step_itself(project: Project) -> None:
    shutil.copy(INVALID / "self_suggestion.yaml", project.root / "b.yaml")
    result = project.uet("validate", "b.yaml")
    assert result.code == 3
    assert "k1-01-adr-structure" in result.err
    assert "did you mean 'k1-02-adr-workstream'" not in result.err
    assert "did you mean 'WS-K1-CRITICAL'" not in result.err


def test_did_you_mean_still_suggests_a_sibling(project: Project) -> None:
    project.write(
        "b.yaml",
        "bundle_id: x\nworkstreams:\n  - ws_id: W\n    steps:\n"
        "      - {step_id: build-docs, command: 'true'}\n"
        "      - {step_id: check-docs, command: 'true', depends_on: [build-doc]}\n",
    )
    result = project.uet("validate", "b.yaml")
    assert "did you mean 'build-docs'?" in result.err


def test_cycle_names_the_line_of_the_depends_on_that_closes_it(project: Project) -> None:
    project.write(
        "b.yaml",
        "bundle_id: x\nworkstreams:\n  - ws_id: W\n    steps:\n"
        "      - step_id: a\n        command: 'true'\n        depends_on: [c]\n"
        "      - step_id: b\n        command: 'true'\n        depends_on: [a]\n"
        "      - step_id: c\n        command: 'true'\n        depends_on:\n"
        "          - b\n",
    )
    result = project.uet("validate", "b.yaml")
    assert result.code == 3
    # a waits for c, c for b, and b's `depends_on: [a]` (line 10) closes the loop
    assert (
        "workstreams[0].steps[1].depends_on[0] (line 10): dependency cycle: a -> c -> b -> a"
        in result.err
    )


def test_cycle_through_a_workstream_dependency_points_at_it(project: Project) -> None:
    project.write(
        "b.yaml",
        "bundle_id: x\nworkstreams:\n  - ws_id: W\n    depends_on: [V]\n    steps:\n"
        "      - {step_id: a, command: 'true'}\n"
        "  - ws_id: V\n    steps:\n"
        "      - {step_id: b, command: 'true', depends_on: [a]}\n",
    )
    result = project.uet("validate", "b.yaml")
    assert result.code == 3
    assert "dependency cycle: " in result.err
    located = [line for line in result.err.splitlines() if "dependency cycle" in line]
    assert (
        located[0]
        .split(": dependency")[0]
        .endswith(
            (
                "workstreams[0].depends_on[0] (line 4)",
                "workstreams[1].steps[0].depends_on[0] (line 9)",
            )
        )
    )


def test_state_reached_through_a_symlink_is_refused(project: Project) -> None:
    (project.root / ".git").mkdir()
    os.symlink(".git", project.root / "notes")
    project.write(
        "b.yaml",
        "bundle_id: x\nworkstreams:\n  - ws_id: W\n    steps:\n"
        "      - {step_id: a, command: 'true', create_files: [notes/config]}\n",
    )
    result = project.uet("validate", "b.yaml")
    assert result.code == 3
    assert "'notes/config' leads (through a symlink) into .git/, where git keeps" in result.err


def test_validate_warns_about_inputs_nothing_provides(project: Project) -> None:
    project.write("docs/here.md", "x")
    project.write(
        "b.yaml",
        "bundle_id: x\nworkstreams:\n  - ws_id: W\n    steps:\n"
        "      - {step_id: gen, command: 'true', create_files: [out/made.md]}\n"
        "      - {step_id: use, command: 'true',"
        " files: [docs/here.md, out/made.md, docs/absent.md]}\n",
    )
    result = project.uet("validate", "b.yaml")
    assert result.code == 0
    assert "b.yaml: ok" in result.out
    assert "b.yaml: warning: 'docs/absent.md' (input of use) does not exist" in result.err
    assert "here.md" not in result.err and "made.md" not in result.err
    assert "Traceback" not in result.err


def one_step_workstreams(n: int, step_id: str | None = None, **step: object) -> dict[str, object]:
    """N workstreams of one shell step (each step `step_id` when given: all duplicates)."""
    return {
        "bundle_id": "many",
        "workstreams": [
            {
                "ws_id": f"w{i}",
                "steps": [{"step_id": step_id or f"s{i}", "command": "true", **step}],
            }
            for i in range(n)
        ],
    }


def test_many_problems_print_the_first_50_and_count_the_rest(project: Project) -> None:
    project.write("b.json", json.dumps(one_step_workstreams(300, "s"), indent=1))
    result = project.uet("validate", "b.json")
    assert result.code == 3
    assert result.err.count("duplicate step_id 's'") == 50
    assert result.err.count("hint: give each step its own id") == 1
    assert "… and 250 more of the same kind: duplicate step_id … (250)" in result.err
    assert "`uet validate --json FILE` lists every problem" in result.err
    assert len(result.err.splitlines()) <= 56
    assert "ERROR: 300 problem(s) in b.json" in result.err

    listed = project.uet("validate", "--json", "b.json")
    assert listed.code == 3
    (entry,) = json.loads(listed.out)
    assert entry["file"] == "b.json" and entry["ok"] is False
    assert len(entry["problems"]) == 300
    assert entry["problems"][-1]["where"].startswith("workstreams[299].steps[0].step_id (line ")


def test_validate_json_of_a_valid_bundle_counts_it_and_lists_missing_inputs(
    project: Project,
) -> None:
    project.write("b.json", json.dumps(one_step_workstreams(3, files=["docs/absent.md"])))
    result = project.uet("validate", "--json", "b.json")
    assert result.code == 0
    (entry,) = json.loads(result.out)
    assert (entry["ok"], entry["workstreams"], entry["steps"], entry["problems"]) == (
        True,
        3,
        3,
        [],
    )
    assert entry["missing_inputs"][0] == {"step_id": "s0", "path": "docs/absent.md"}


def test_a_symlink_into_state_is_found_among_many_files_of_one_folder(project: Project) -> None:
    """A folder asked about often is listed once instead of an lstat per file: a symlink
    among its files is still seen, and a path below a missing folder costs no lookup."""
    (project.root / ".git").mkdir()
    for i in range(40):
        project.write(f"src/f{i}.py", "")
    os.symlink("../.git", project.root / "src" / "zz")
    files = [f"src/f{i}.py" for i in range(40)] + ["src/zz", "src/zz/config", "gone/" * 400 + "x"]
    bundle = one_step_workstreams(1, files=files)
    project.write("b.json", json.dumps(bundle))
    result = project.uet("validate", "b.json")
    assert result.code == 3
    assert "'src/zz' leads (through a symlink) into .git/" in result.err  # seen in the listing
    assert "'src/zz/config' leads (through a symlink) into .git/" in result.err
    assert result.err.count("leads (through a symlink)") == 2
    assert "Traceback" not in result.err
