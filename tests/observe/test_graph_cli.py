"""`uet graph FILE --format dot|mermaid`: workstreams as clusters, every edge, critical path."""

from __future__ import annotations

from pathlib import Path

import pytest

from support import Project, shell_step


def small(project: Project) -> Path:
    return project.bundle(
        {
            "bundle_id": "small",
            "workstreams": [
                {
                    "ws_id": "WS-1",
                    "name": 'First "one"',
                    "steps": [
                        shell_step("make", "echo x > a.txt", create_files=["a.txt"]),
                        shell_step("read", "cat a.txt", files=["a.txt"]),
                        shell_step("after", "true", depends_on=["make"]),
                    ],
                },
                {
                    "ws_id": "WS-2",
                    "depends_on": ["WS-1"],
                    "steps": [shell_step("last", "true")],
                },
            ],
        }
    )


def test_dot_has_clusters_and_every_kind_of_edge(project: Project) -> None:
    res = project.uet("graph", str(small(project)), "--format", "dot")
    assert res.code == 0, res.err
    dot = res.out
    assert dot.startswith('digraph "small" {')
    assert 'subgraph "cluster_WS-1" {' in dot and 'subgraph "cluster_WS-2" {' in dot
    assert 'label="WS-1: First \\"one\\""' in dot
    for step in ("make", "read", "after", "last"):
        assert f'"{step}" [label="{step}"' in dot
    assert '"make" -> "after";' in dot
    assert '"make" -> "read" [style=dashed, label="file"];' in dot
    assert 'ltail="cluster_WS-1", lhead="cluster_WS-2"' in dot
    assert "color=red" not in dot  # no durations known: no critical path
    assert not (project.root / ".uet").exists()  # drawing never creates run state
    assert dot.rstrip().endswith("}")


def test_mermaid_has_subgraphs_and_edges(project: Project) -> None:
    res = project.uet("graph", str(small(project)), "--format", "mermaid")
    assert res.code == 0, res.err
    lines = res.out.splitlines()
    assert lines[0] == "flowchart LR"
    assert '  subgraph ws0_WS_1["WS-1: First #quot;one#quot;"]' in lines
    assert sum(1 for ln in lines if ln.strip() == "end") == 2
    assert '    s1_make["make"]' in lines
    assert "  s1_make --> s3_after" in lines
    assert "  s1_make -.->|file| s2_read" in lines
    assert "  ws0_WS_1 --> ws4_WS_2" in lines
    assert not any("crit" in ln for ln in lines)


def test_critical_path_is_marked_once_durations_are_known(project: Project) -> None:
    bundle = small(project)
    assert project.uet("run", str(bundle)).code == 0
    dot = project.uet("graph", str(bundle)).out
    assert '"make" [label="make", color=red, penwidth=2];' in dot
    mermaid = project.uet("graph", str(bundle), "--format", "mermaid").out
    assert "classDef crit" in mermaid and "linkStyle" in mermaid
    plain = project.uet("graph", str(bundle), "--no-critical-path").out
    assert "color=red" not in plain


def test_bad_input_is_a_usage_error(project: Project) -> None:
    assert project.uet("graph", "missing.yaml").code == 3
    with pytest.raises(SystemExit) as exc:
        project.uet("graph", str(small(project)), "--format", "svg")
    assert exc.value.code == 3
