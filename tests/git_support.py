"""Helpers of the isolation tests: a git repository in tmp_path with the fake tools on PATH,
aider steps that edit a file in place, and what git says about the result."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from uet_doit.testing import FakeTools, use_fake_tools

from support import Project

DOC = "".join(f"line{i}\n" for i in range(1, 13))
TRAILERS = (
    "Uet-Step",
    "Uet-Workstream",
    "Uet-Run",
    "Uet-Attempt",
    "Uet-Tool",
    "Uet-Model",
    "Uet-Cost-USD",
    "Uet-Prompt-SHA256",
)


def git(project: Project, *args: str, check: bool = True) -> str:
    ident = ["-c", "user.name=Test", "-c", "user.email=test@localhost"]
    proc = subprocess.run(
        ["git", "-C", str(project.root), *ident, *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(proc.stderr)
    return proc.stdout


def make_repo(project: Project, outside: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    """A git repository (main, one commit: doc.md, a.md, b.md, notes.md) and the fake tools."""
    for name in list(os.environ):
        if name.startswith("GIT_"):
            monkeypatch.delenv(name)
    use_fake_tools(outside, monkeypatch, home=False)
    monkeypatch.setenv("HOME", str(outside))  # no global git identity: uet supplies one
    project.write("doc.md", DOC)
    project.write("a.md", "alpha\n")
    project.write("b.md", "beta\n")
    project.write("notes.md", "some notes\n")
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "start")
    return project


def calls(project: Project) -> list[dict[str, Any]]:
    """What the fake tools of `make_repo` were asked to do (their `--version` answers left out)."""
    return FakeTools(Path(os.environ["FAKE_TOOL_LOG"]).parent).calls()


def edit_step(step_id: str, path: str, old: str, new: str, **extra: Any) -> dict[str, Any]:
    """An aider step that edits `path` in place, replacing `old` by `new`."""
    env = {"FAKE_REPLACE": f"{old}=>{new}", **extra.pop("env", {})}
    return {
        "step_id": step_id,
        "tool_profile_id": "aider",
        "context": {"files": [path], "instruction": f"replace {old} in {path}"},
        "env": env,
        **extra,
    }


def bundle(project: Project, *steps: dict[str, Any], **top: Any) -> None:
    project.bundle(
        {"bundle_id": "iso", **top, "workstreams": [{"ws_id": "W", "steps": list(steps)}]}
    )
    git(project, "add", "bundle.yaml")
    git(project, "commit", "-q", "-m", "bundle")


def step_commits(project: Project) -> list[dict[str, str]]:
    """Commits of main carrying trailers, newest first: {sha, subject, Trailer: value}."""
    out = git(project, "log", "-z", "--format=%H%n%s%n%(trailers:only,unfold)", "main")
    rows = []
    for entry in out.split("\0"):
        lines = entry.strip("\n").splitlines()
        if len(lines) < 3:
            continue
        row = {"sha": lines[0], "subject": lines[1]}
        row.update(dict(line.split(": ", 1) for line in lines[2:] if ": " in line))
        if "Uet-Step" in row:
            rows.append(row)
    return rows


def assert_nothing_left(project: Project) -> None:
    worktrees = git(project, "worktree", "list", "--porcelain")
    assert worktrees.count("worktree ") == 1, worktrees
    assert git(project, "branch", "--list", "uet/*").strip() == ""
    assert not (project.root / ".uet" / "landing.json").exists()
    assert not (project.root / ".git" / "index.lock").exists()


def step(project: Project, step_id: str) -> dict[str, Any]:
    found: dict[str, Any] = next(s for s in project.status()["steps"] if s["step_id"] == step_id)
    return found
