"""`uet bootstrap`: project detection and the files it writes, safely re-runnable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from uet_doit.cli import plan_cmds
from uet_doit.errors import EXIT_USAGE
from uet_doit.plans import bootstrap

from support import Project, run_plugin, shell_step

SECRET = "sk-test-value-never-written-0123456789"
ARTEFACTS = ("PROJECT_PROFILE.yaml", "router_config.json", "dodo.py", ".gitignore")


def run(*argv: str) -> int:
    return run_plugin(plan_cmds, *argv)


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH holding only a fake `aider`, and one API key set (to a secret value)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    aider = bin_dir / "aider"
    aider.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    aider.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    for name in bootstrap.API_KEY_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    project = tmp_path / "proj"
    (project / "tests").mkdir(parents=True)
    return project


def snapshot(root: Path) -> dict[str, str]:
    return {name: (root / name).read_text(encoding="utf-8") for name in ARTEFACTS}


def test_fresh_project_gets_profile_router_and_dodo(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("bootstrap", str(env)) == 0
    profile = yaml.safe_load((env / "PROJECT_PROFILE.yaml").read_text(encoding="utf-8"))
    assert profile["ai_tools"] == {"available": ["aider"], "api_keys_set": ["ANTHROPIC_API_KEY"]}
    assert [t["name"] for t in profile["test_tools"]] == ["pytest"]
    router = json.loads((env / "router_config.json").read_text(encoding="utf-8"))
    assert router["default_tools"] == ["aider"]
    routes = {r["task_kind"]: r for r in router["routes"]}
    assert routes["docs"]["tools"] == ["aider"]
    assert routes["code_edit"]["tools"] == ["aider"]
    assert routes["testing"]["tools"] == ["pytest"]
    assert set(router["tools"]) == {"aider", "pytest"}
    dodo = (env / "dodo.py").read_text(encoding="utf-8")
    assert "from uet_doit import DOIT_CONFIG, bundle_task_generators" in dodo
    assert 'globals().update(bundle_task_generators("workstreams"))' in dodo
    compile(dodo, "dodo.py", "exec")
    assert (env / ".uet").is_dir() and (env / "workstreams").is_dir()
    assert (env / ".gitignore").read_text(encoding="utf-8").splitlines()[-2:] == [
        ".doit.db*",
        ".uet/",
    ]
    out = capsys.readouterr().out
    assert "wrote PROJECT_PROFILE.yaml" in out and "created .uet/" in out


def test_api_key_values_are_never_written(env: Path) -> None:
    run("bootstrap", str(env))
    for path in env.rglob("*"):
        if path.is_file():
            assert SECRET not in path.read_text(encoding="utf-8", errors="replace"), path


def test_second_run_changes_nothing(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run("bootstrap", str(env))
    before = snapshot(env)
    mtimes = {n: (env / n).stat().st_mtime_ns for n in ARTEFACTS}
    capsys.readouterr()
    assert run("bootstrap", str(env)) == 0
    assert snapshot(env) == before
    assert {n: (env / n).stat().st_mtime_ns for n in ARTEFACTS} == mtimes
    out = capsys.readouterr().out
    assert "wrote" not in out and "kept" not in out
    assert out.count("unchanged") == 6


def test_edited_file_is_kept_with_a_diff_until_force(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run("bootstrap", str(env))
    dodo = env / "dodo.py"
    dodo.write_text(dodo.read_text(encoding="utf-8") + "EXTRA = 1\n", encoding="utf-8")
    capsys.readouterr()
    assert run("bootstrap", str(env)) == 0
    out = capsys.readouterr().out
    assert "kept dodo.py" in out
    assert "-EXTRA = 1" in out and "+++ dodo.py (bootstrap)" in out
    assert "--force" in out
    assert "EXTRA = 1" in dodo.read_text(encoding="utf-8")
    assert run("bootstrap", str(env), "--force") == 0
    assert "overwrote dodo.py" in capsys.readouterr().out
    assert "EXTRA" not in dodo.read_text(encoding="utf-8")


def test_gitignore_entries_are_not_duplicated(env: Path) -> None:
    (env / ".gitignore").write_text("node_modules/\n.uet\n", encoding="utf-8")
    run("bootstrap", str(env))
    run("bootstrap", str(env))
    lines = (env / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert lines == ["node_modules/", ".uet", "# uet run state", ".doit.db*"]


def test_documentation_project_and_ignored_folders(env: Path) -> None:
    for i in range(5):
        (env / "docs").mkdir(exist_ok=True)
        (env / "docs" / f"page{i}.md").write_text("# page\n", encoding="utf-8")
    (env / "tool.py").write_text("x = 1\n", encoding="utf-8")
    vendored = env / "node_modules" / "pkg"
    vendored.mkdir(parents=True)
    for i in range(20):
        (vendored / f"m{i}.js").write_text("", encoding="utf-8")
    (env / "mkdocs.yml").write_text("site_name: x\n", encoding="utf-8")
    (env / ".markdownlint.json").write_text("{}", encoding="utf-8")
    (env / "requirements.txt").write_text("pyyaml\n", encoding="utf-8")
    profile = bootstrap.detect(env)
    assert profile["kind"] == "documentation"
    assert profile["languages"] == {"python": 1}
    assert profile["docs"]["markdown_files"] == 5 and profile["docs"]["mkdocs"]
    assert profile["linters"] == [{"name": "markdownlint", "config": ".markdownlint.json"}]
    assert profile["package_managers"] == [{"name": "pip", "file": "requirements.txt"}]


def test_node_project_uses_npm_test_and_no_ai_tool_tip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    package = {"scripts": {"test": "jest"}, "eslintConfig": {}}
    (tmp_path / "package.json").write_text(json.dumps(package), encoding="utf-8")
    (tmp_path / "index.js").write_text("", encoding="utf-8")
    assert run("bootstrap", str(tmp_path)) == 0
    profile = yaml.safe_load((tmp_path / "PROJECT_PROFILE.yaml").read_text(encoding="utf-8"))
    assert profile["kind"] == "javascript"
    assert profile["test_tools"][0]["command"] == "npm test"
    assert profile["linters"] == [{"name": "eslint", "config": "package.json"}]
    router = json.loads((tmp_path / "router_config.json").read_text(encoding="utf-8"))
    assert [r["task_kind"] for r in router["routes"]] == ["testing"]
    assert "no AI CLI" in capsys.readouterr().out


def test_missing_directory_is_a_usage_error(tmp_path: Path) -> None:
    assert run("bootstrap", str(tmp_path / "nope")) == EXIT_USAGE


@pytest.mark.slow  # plain doit in a child process
def test_plain_doit_on_the_written_dodo_is_durable_and_records_blocked_steps(
    project: Project,
) -> None:
    """The dodo.py bootstrap writes uses the one DOIT_CONFIG: uet's backend and the
    recording `uet` reporter, without which a blocked step would not be recorded."""
    assert project.uet("bootstrap", ".").code == 0
    steps = [
        shell_step("make", "echo x >> made.log; exit 1"),
        shell_step("after", "true", depends_on=["make"]),
    ]
    project.bundle(
        {"bundle_id": "boot", "workstreams": [{"ws_id": "W", "steps": steps}]},
        "workstreams/boot.yaml",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("UET_")}
    done = subprocess.run(
        [sys.executable, "-m", "doit", "run", "--continue", "boot"],
        cwd=project.root,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 2, done.stdout + done.stderr  # doit's word for "blocked"
    assert project.lines("made.log") == ["x"]
    assert (project.root / ".doit.db").exists()  # uet-sqlite's file, not dbm's .doit.db.db
    status = project.status()
    assert status["status"] == "failed"
    assert {s["step_id"]: s["status"] for s in status["steps"]} == {
        "make": "failed",
        "after": "blocked",
    }
