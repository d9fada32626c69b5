"""Test gates after workstreams and completion criteria, through `uet run`."""

from __future__ import annotations

import json
from typing import Any

import pytest

from support import CRITERIA_BUNDLE, Project, shell_step


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
    project.bundle(CRITERIA_BUNDLE)
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
    from uet_doit.run.doit.compiler import NoActions, compile_tasks
    from uet_doit.tools.routing import default_known_tools

    names = [
        t["name"]
        for t in compile_tasks(
            load_bundle(project.root / "bundle.yaml", known_tools=default_known_tools()),
            project.root,
            NoActions(),
        )
    ]
    assert "WS-DOCS.gate-2-docs" in names and "WS-DOCS.gate-1-lint" in names


@pytest.mark.slow  # plain doit in a child process
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


SECRET = "tok-9f8e7d6c5b4a"


def leaky_bundle(**settings: Any) -> dict[str, Any]:
    """Gates and a criterion that print keys from the environment, as real tools do."""
    leak = 'echo "auth $DEPLOY_TOKEN pin $SHORT_TOKEN"; echo "Bearer $DEPLOY_TOKEN" >&2'
    return {
        "bundle_id": "leaky",
        **settings,
        "workstreams": [
            {
                "ws_id": "WS",
                "steps": [shell_step("build", "echo built > out.txt", create_files=["out.txt"])],
                "test_gates": [
                    {"type": "GATE_LINT", "command": f"{leak}; exit 1", "blocking": False},
                    {"type": "GATE_UNIT", "command": f"{leak}; exit 2", "blocking": True},
                ],
                "completion_criteria": [
                    {"description": "deploy $DEPLOY_TOKEN ready", "command": f"{leak}; false"}
                ],
            },
            {"ws_id": "NEXT", "depends_on": ["WS"], "steps": [shell_step("ship", "true")]},
        ],
    }


def test_gate_and_criterion_output_is_redacted_everywhere(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEPLOY_TOKEN", SECRET)
    monkeypatch.setenv("SHORT_TOKEN", "qz9x")
    project.bundle(leaky_bundle())
    run = project.uet("run", "bundle.yaml", "-c")
    assert run.code == 1
    status = project.status()
    gates = {g["gate_type"]: g for g in status["gates"]}
    # the gates ran and their output is there, masked
    assert gates["GATE_LINT"]["outcome"] == "warning"
    assert gates["GATE_UNIT"]["outcome"] == "failed"
    assert "auth *** pin ***" in gates["GATE_UNIT"]["message"]
    assert "Bearer ***" in gates["GATE_UNIT"]["message"]
    assert "auth *** pin ***" in run.out + run.err  # the blocking gate's failure on the terminal
    report = project.uet("report", "-o", "report.html")
    assert report.code == 0, report.err
    logs = list((project.root / ".uet" / "runs").rglob("gates/*"))
    assert len(logs) == 4 and b"auth *** pin ***" in b"".join(p.read_bytes() for p in logs)
    seen = run.out + run.err + json.dumps(status) + report.out + report.err
    assert SECRET not in seen and "qz9x" not in seen
    for path in project.root.rglob("*"):  # .uet/ logs, state.db (and its WAL), the report
        if path.is_file():
            data = path.read_bytes()
            assert SECRET.encode() not in data and b"qz9x" not in data, path


def test_criterion_detail_is_redacted_before_it_is_cut(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The detail keeps the last 300 characters: a key cut at that edge is still masked."""
    monkeypatch.setenv("DEPLOY_TOKEN", SECRET)
    data = leaky_bundle()
    ws = data["workstreams"][0]
    ws["test_gates"] = []
    # the key ends 290 characters before the end: cut first, redacted after, 6 of it would show
    ws["completion_criteria"] = [
        {
            "description": "cut",
            "command": "printf '%s' \"$DEPLOY_TOKEN\"; printf 'z%.0s' $(seq 290); exit 1",
        }
    ]
    project.bundle(data)
    run = project.uet("run", "bundle.yaml")
    assert run.code == 1
    (criterion,) = project.status()["criteria"]
    assert criterion["state"] == "unmet"
    assert SECRET[-6:] not in criterion["detail"] and SECRET[-6:] not in run.out
    assert criterion["detail"].endswith("z" * 290)


def test_gate_logs_are_capped_at_max_log_bytes(project: Project) -> None:
    data = leaky_bundle(max_log_bytes=8192)
    data["workstreams"][0]["test_gates"] = [
        {"type": "GATE_UNIT", "command": "seq 1 100000; exit 1", "blocking": True}
    ]
    data["workstreams"][0]["completion_criteria"] = []
    project.bundle(data)
    assert project.uet("run", "bundle.yaml").code == 1
    (log,) = (project.root / ".uet" / "runs").rglob("gates/*.stdout")
    lines = log.read_text().splitlines()
    assert log.stat().st_size <= 8192
    assert lines[0] == "1" and lines[-1] == "100000"
    assert sum("cut from the middle of this log" in ln for ln in lines) == 1
    gate = project.status()["gates"][0]
    assert gate["message"].rstrip().endswith("100000")  # the tail is still what the user sees


def test_secret_too_short_to_mask_is_warned_about_once(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIN_PASSWORD", "Q7")
    project.bundle(gated(docs_gate="true", lint_gate="true"))
    run = project.uet("run", "bundle.yaml")
    assert run.code == 0
    assert run.err.count("PIN_PASSWORD is shorter than 3 characters") == 1
    assert "Q7" not in run.err + run.out
    monkeypatch.delenv("PIN_PASSWORD")
    assert "shorter than" not in project.uet("run", "bundle.yaml").err
