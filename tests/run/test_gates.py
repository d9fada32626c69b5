"""Test gates after workstreams and completion criteria, through `uet run`."""

from __future__ import annotations

from typing import Any

from support import Project, shell_step


def gated(docs_gate: str = "test -f docs/ok", lint_gate: str = "false") -> dict[str, Any]:
    return {
        "bundle_id": "g",
        "workstreams": [
            {
                "ws_id": "WS-DOCS",
                "steps": [
                    shell_step(
                        "write",
                        "mkdir -p docs; echo write >> ran.log; echo hi > docs/a.md",
                        create_files=["docs/a.md"],
                    )
                ],
                "test_gates": [
                    {
                        "type": "GATE_LINT",
                        "command": lint_gate,
                        "required": False,
                        "blocking": False,
                    },
                    {"type": "GATE_DOCS", "command": docs_gate, "required": True, "blocking": True},
                ],
            },
            {
                "ws_id": "WS-NEXT",
                "depends_on": ["WS-DOCS"],
                "steps": [shell_step("next", "echo next >> ran.log")],
            },
        ],
    }


def test_blocking_gate_blocks_dependents_and_lint_only_warns(project: Project) -> None:
    project.bundle(gated())
    result = project.uet("run", "bundle.yaml", "-c")
    assert result.code == 1
    assert project.lines("ran.log") == ["write"]
    status = project.status()
    steps = {s["step_id"]: s for s in status["steps"]}
    assert steps["write"]["status"] == "succeeded"
    assert steps["next"]["status"] == "blocked"
    assert "blocked by gate GATE_DOCS of WS-DOCS" in steps["next"]["last_error"]
    gates = {g["gate_type"]: g for g in status["gates"]}
    assert gates["GATE_DOCS"]["outcome"] == "failed"
    assert gates["GATE_LINT"]["outcome"] == "warning"
    # fix what the gate checks: the gate runs again, the dependent runs, write does not
    project.write("docs/ok", "")
    assert project.uet("run", "bundle.yaml").code == 0
    assert project.lines("ran.log") == ["write", "next"]


def test_gate_reruns_only_when_its_workstreams_files_change(project: Project) -> None:
    project.bundle(gated(docs_gate="echo gate >> gates.log", lint_gate="true"))
    assert project.uet("run", "bundle.yaml").code == 0
    assert project.uet("run", "bundle.yaml").code == 0
    assert project.lines("gates.log") == ["gate"]
    (project.root / "docs" / "a.md").unlink()  # the step re-creates it: same content
    project.uet("run", "bundle.yaml")
    assert project.lines("gates.log") == ["gate"]
    project.write("docs/a.md", "changed by hand\n")
    project.uet("run", "bundle.yaml")
    assert project.lines("gates.log") == ["gate", "gate"]


def test_missing_gate_tools_skip_when_optional_and_fail_with_hint_when_required(
    project: Project,
) -> None:
    data = gated(docs_gate="markdownlint-not-installed docs", lint_gate="markdownlint docs")
    project.bundle(data)
    result = project.uet("run", "bundle.yaml", "-c")
    gates = {g["gate_type"]: g for g in project.status()["gates"]}
    assert gates["GATE_LINT"]["outcome"] == "skipped"
    assert "npm install -g markdownlint-cli" in gates["GATE_LINT"]["message"]
    assert gates["GATE_DOCS"]["outcome"] == "failed"
    assert "is not installed; install with" in gates["GATE_DOCS"]["message"]
    assert result.code == 1


def test_completion_criteria_checklist_and_evaluation(project: Project) -> None:
    project.bundle(
        {
            "bundle_id": "c",
            "workstreams": [
                {
                    "ws_id": "W",
                    "steps": [shell_step("make", "echo x > made.txt", create_files=["made.txt"])],
                    "completion_criteria": [
                        "Reviewed by a person",
                        {"description": "output exists", "files_exist": ["made.txt"]},
                        {"description": "output mentions y", "command": "grep -q y made.txt"},
                    ],
                }
            ],
        }
    )
    result = project.uet("run", "bundle.yaml")
    assert result.code == 1
    assert "[ ] W: Reviewed by a person (to confirm)" in result.out
    assert "[x] W: output exists" in result.out
    assert "[!] W: output mentions y (UNMET" in result.out
    status = project.status()
    assert "completion criteria unmet: output mentions y" in status["reason"]
    states = {c["description"]: c["state"] for c in status["criteria"]}
    assert states == {
        "Reviewed by a person": "to_confirm",
        "output exists": "met",
        "output mentions y": "unmet",
    }


def test_gates_are_doit_tasks(project: Project) -> None:
    project.bundle(gated())
    listed = project.uet("list", "bundle.yaml", "--json").out
    assert "gate" not in listed  # uet list shows steps
    from uet_doit.bundle.loader import load_bundle
    from uet_doit.run.compiler import NoActions, compile_tasks

    names = [
        t["name"]
        for t in compile_tasks(load_bundle(project.root / "bundle.yaml"), project.root, NoActions())
    ]
    assert "WS-DOCS.gate-2-docs" in names and "WS-DOCS.gate-1-lint" in names


def test_gated_bundle_runs_under_plain_doit(project: Project) -> None:
    import subprocess
    import sys

    project.bundle(gated(docs_gate="true", lint_gate="true"))
    project.write(
        "dodo.py",
        "from uet_doit import tasks_from_bundle\n"
        "DOIT_CONFIG = {'backend': 'uet-sqlite', 'dep_file': '.doit.db'}\n"
        "task_g = tasks_from_bundle('bundle.yaml')\n",
    )
    done = subprocess.run(
        [sys.executable, "-m", "doit", "-n", "2", "g"],
        cwd=project.root,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert project.lines("ran.log") == ["write", "next"]
