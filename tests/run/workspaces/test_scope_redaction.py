"""Secrets in file names: a tool that creates out-of-scope files named after secret values
gets a scope_violation whose message, wherever uet shows or keeps it, has them masked."""

from __future__ import annotations

import os

import pytest
from git_support import bundle, edit_step, step

from support import Project

LONG = "s3cr3t-gh-token-9f8e7d"
PASSWORD = "hunter2-correct-horse"
SHORT = "zq81"


@pytest.fixture
def repo(repo: Project, monkeypatch: pytest.MonkeyPatch) -> Project:
    """The shared repository, with secrets in the environment the tools inherit."""
    monkeypatch.setenv("GITHUB_TOKEN", LONG)
    monkeypatch.setenv("DB_PASSWORD", PASSWORD)
    monkeypatch.setenv("SHORT_TOKEN", SHORT)
    return repo


def test_out_of_scope_paths_named_after_secrets_are_masked_everywhere(repo: Project) -> None:
    strays = ["leak/$GITHUB_TOKEN.txt", "$DB_PASSWORD/x.txt", "leak/$SHORT_TOKEN.txt"]
    bundle(
        repo,
        edit_step("s", "a.md", "alpha", "ALPHA", env={"FAKE_WRITE_ALSO": os.pathsep.join(strays)}),
    )
    result = repo.run()
    assert result.code == 1
    failed = step(repo, "s")
    assert failed["failure_class"] == "scope_violation"
    assert "leak/***.txt" in failed["last_error"], failed["last_error"]
    shown = [
        result.out + result.err,
        repo.uet("status", "--json").out,
        repo.uet("workspaces", "--json").out,
        repo.uet("workspaces").out,
    ]
    for db in sorted((repo.root / ".uet").glob("state.db*")):  # every table, WAL too
        shown.append(db.read_bytes().decode("latin-1"))
    for text in shown:
        for secret in (LONG, PASSWORD, SHORT):
            assert secret not in text
