"""Every broken bundle exits 3 through `uet validate`, naming file, place and problem."""

from __future__ import annotations

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

    project.write(
        "b.yaml",
        "bundle_id: x\nworkstreams:\n  - ws_id: W\n    steps:\n"
        "      - {step_id: reader, command: 'true', files: [gen/a.txt]}\n"
        "      - {step_id: writer, command: 'true', create_files: [gen/a.txt]}\n",
    )
    bundle = load_bundle(project.root / "b.yaml", project.root)
    graph = build_graph(bundle)
    assert graph.implied["reader"] == ["writer"]
    assert graph.order().index("writer") < graph.order().index("reader")
