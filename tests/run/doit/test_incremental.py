"""End to end through `uet run` (real doit in tmp_path): re-runs redo only what changed."""

from __future__ import annotations

from typing import Any

import pytest

from support import Project, shell_step


def pipeline() -> dict[str, Any]:
    # each step appends its id to ran.log, so the log says exactly what ran
    return {
        "bundle_id": "inc",
        "workstreams": [
            {
                "ws_id": "WS-A",
                "steps": [
                    shell_step(
                        "upper",
                        "echo upper >> ran.log; tr a-z A-Z < src/in.txt > out/upper.txt",
                        files=["src/in.txt"],
                        create_files=["out/upper.txt"],
                    ),
                    shell_step(
                        "count",
                        "echo count >> ran.log; wc -c < out/upper.txt > out/count.txt",
                        depends_on=["upper"],
                        create_files=["out/count.txt"],
                    ),
                    shell_step(
                        "other",
                        "echo other >> ran.log; echo x > out/other.txt",
                        create_files=["out/other.txt"],
                    ),
                ],
            },
            {
                "ws_id": "WS-B",
                "depends_on": ["WS-A"],
                "steps": [
                    shell_step(
                        "report",
                        "echo report >> ran.log; cat out/count.txt > out/report.txt",
                        files=["out/count.txt"],
                        create_files=["out/report.txt"],
                    ),
                    shell_step("noio", "echo noio >> ran.log"),
                ],
            },
        ],
    }


def run(project: Project, *extra: str) -> list[str]:
    (project.root / "ran.log").unlink(missing_ok=True)
    result = project.uet("run", "bundle.yaml", *extra)
    assert result.code == 0, result.out + result.err
    return sorted(project.lines("ran.log"))


@pytest.fixture
def built(project: Project) -> Project:
    project.write("src/in.txt", "hello\n")
    (project.root / "out").mkdir()
    project.bundle(pipeline())
    assert run(project) == ["count", "noio", "other", "report", "upper"]
    return project


def test_nothing_changed_nothing_runs(built: Project) -> None:
    assert run(built) == []


def test_edited_input_reruns_that_step_and_its_dependents(built: Project) -> None:
    built.write("src/in.txt", "hello world\n")
    assert run(built) == ["count", "report", "upper"]


def test_same_output_stops_propagation(built: Project) -> None:
    built.write("src/in.txt", "HELLO\n")  # upper-cased output is unchanged
    assert run(built) == ["upper"]


def test_edited_definition_reruns_that_step(built: Project) -> None:
    data = pipeline()
    data["workstreams"][0]["steps"][2]["command"] = "echo other >> ran.log; echo y > out/other.txt"
    built.bundle(data)
    assert run(built) == ["other"]


def test_budget_or_name_edit_reruns_nothing(built: Project) -> None:
    data = pipeline()
    data["workstreams"][0]["steps"][2]["name"] = "Other things"
    data["workstreams"][0]["max_cost_usd"] = 3.0
    built.bundle(data)
    assert run(built) == []


def test_deleted_output_reruns_that_step(built: Project) -> None:
    (built.root / "out" / "other.txt").unlink()
    assert run(built) == ["other"]


def test_failed_step_without_files_reruns_until_it_passes(project: Project) -> None:
    project.bundle(
        {
            "bundle_id": "f",
            "workstreams": [
                {"ws_id": "W", "steps": [shell_step("flag", "echo flag >> ran.log; test -f ok")]}
            ],
        }
    )
    assert project.uet("run", "bundle.yaml").code == 1
    project.write("ok", "")
    assert run(project) == ["flag"]
    assert run(project) == []


def test_missing_create_file_fails_the_step_naming_it(project: Project) -> None:
    project.bundle(
        {
            "bundle_id": "m",
            "workstreams": [
                {
                    "ws_id": "W",
                    "steps": [shell_step("lazy", "true", create_files=["out/never.txt"])],
                }
            ],
        }
    )
    result = project.uet("run", "bundle.yaml")
    assert result.code == 1
    assert "did not create: out/never.txt" in result.out
    step = project.status()["steps"][0]
    assert step["status"] == "failed" and step["failure_class"] == "missing_output"


def test_validation_failure_shows_the_output_tail(project: Project) -> None:
    project.bundle(
        {
            "bundle_id": "v",
            "workstreams": [
                {
                    "ws_id": "W",
                    "steps": [
                        shell_step(
                            "v",
                            "true",
                            validation={"command": "echo broken link in README >&2; exit 4"},
                        )
                    ],
                }
            ],
        }
    )
    result = project.uet("run", "bundle.yaml")
    assert result.code == 1
    assert "gave exit code 4, expected 0" in result.out
    assert "broken link in README" in result.out


@pytest.mark.parametrize("ptype", ["process", "thread"])
def test_parallel_runs_match_serial(project: Project, ptype: str) -> None:
    steps = [
        shell_step(
            f"s{i}",
            f"echo s{i} >> ran.log; echo {i} > out/s{i}.txt",
            create_files=[f"out/s{i}.txt"],
        )
        for i in range(12)
    ]
    steps.append(
        shell_step(
            "sum",
            "echo sum >> ran.log; cat out/s*.txt | sort -n > out/sum.txt",
            depends_on=[f"s{i}" for i in range(12)],
            create_files=["out/sum.txt"],
        )
    )
    project.bundle({"bundle_id": "par", "workstreams": [{"ws_id": "W", "steps": steps}]})
    (project.root / "out").mkdir()
    ran = run(project, "-n", "4", "-P", ptype)
    assert ran == sorted([f"s{i}" for i in range(12)] + ["sum"])
    assert project.read("out/sum.txt").split() == [str(i) for i in range(12)]
    assert run(project, "-n", "4", "-P", ptype) == []
    (project.root / "out" / "s3.txt").unlink()
    assert run(project, "-n", "4", "-P", ptype) == ["s3"]
    status = project.status()
    assert status["status"] == "succeeded"
    assert status["completed_count"] == status["total_count"] == 13


@pytest.mark.slow
def test_doit_sees_the_same_tasks_through_a_dodo_file(project: Project) -> None:
    import subprocess
    import sys

    project.write("src/in.txt", "hello\n")
    (project.root / "out").mkdir()
    project.bundle(pipeline())
    project.write(
        "dodo.py",
        "from uet_doit import tasks_from_bundle\n"
        "DOIT_CONFIG = {'backend': 'uet-sqlite', 'dep_file': '.doit.db'}\n"
        "task_inc = tasks_from_bundle('bundle.yaml')\n",
    )
    listed = subprocess.run(
        [sys.executable, "-m", "doit", "list", "--all"],
        capture_output=True,
        text=True,
        cwd=project.root,
        check=True,
    ).stdout
    assert "inc:upper" in listed and "inc:WS-B" in listed
    subprocess.run(
        [sys.executable, "-m", "doit", "-n", "2", "inc"],
        cwd=project.root,
        check=True,
        capture_output=True,
    )
    assert sorted(project.lines("ran.log")) == ["count", "noio", "other", "report", "upper"]
    # uet sees doit's state: everything is up to date
    assert run(project) == []
