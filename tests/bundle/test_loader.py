from __future__ import annotations

from pathlib import Path

import pytest

from uet_doit.bundle.loader import load_bundle
from uet_doit.errors import BundleError
from uet_doit.tools.routing import default_known_tools

from support import FIXTURES, Project


def problems_of(path: Path, root: Path) -> str:
    with pytest.raises(BundleError) as info:
        load_bundle(path, root, known_tools=default_known_tools())
    return info.value.render()


def test_json_syntax_error_has_line_and_column(project: Project) -> None:
    path = project.write("b.json", '{\n  "bundle_id": "x",\n  "workstreams": [\n}')
    text = problems_of(path, project.root)
    assert "b.json: line 4, column 1: invalid JSON" in text


def test_yaml_syntax_error_has_line_and_column(project: Project) -> None:
    path = project.write("b.yaml", "bundle_id: x\nworkstreams:\n  - ws_id: [unclosed\n")
    text = problems_of(path, project.root)
    assert "b.yaml: line 4" in text and "invalid YAML" in text


def test_problem_locations_carry_json_path_and_line(project: Project) -> None:
    path = project.write("b.yaml", "bundle_id: x\nworkstreams:\n  - ws_id: W\n    stpes: []\n")
    text = problems_of(path, project.root)
    assert "workstreams[0].stpes (line 4): unknown key 'stpes'" in text
    assert "did you mean 'steps'?" in text


def test_list_file_points_to_import(project: Project) -> None:
    path = project.write("b.json", "[]")
    assert "uet import" in problems_of(path, project.root)


def test_missing_file_and_unknown_suffix(project: Project) -> None:
    assert "file not found" in problems_of(project.root / "nope.json", project.root)
    path = project.write("b.toml", "")
    assert "use .json, .yaml or .yml" in problems_of(path, project.root)


def test_real_corpus_bundles_load() -> None:
    root = FIXTURES / "corpus"
    bundle = load_bundle(root / "phase-k-plus-bundle.json", root, known_tools=default_known_tools())
    assert bundle.bundle_id == "phase-k-plus"
    assert len(bundle.steps()) == 16


def test_older_workstream_files_point_to_import(project: Project) -> None:
    flat = project.write("ws-01.json", '{"id": "ws-01", "tasks": ["x"], "files_scope": []}')
    text = problems_of(flat, project.root)
    assert "older flat format" in text and "uet import" in text
    assert "1 problem(s)" in text
    header = project.write("multi.json", '/* DOC_ID: X */\n[{"id": "a", "tasks": ["x"]}]')
    assert "/* comment */ header" in problems_of(header, project.root)
