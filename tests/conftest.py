"""Shared fixtures; the helpers they use live in support.py (importable as `support`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from git_support import make_repo

from uet_doit.testing import FakeTools, use_fake_tools

from support import Project


@pytest.fixture(autouse=True)
def sandbox_allows_test_logs(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fake tools log their calls beside the projects of a test: their sandbox (bubblewrap
    keeps each project read-only inside this folder) lets them write there."""
    monkeypatch.setenv("UET_SANDBOX_ALLOW_WRITE", str(tmp_path_factory.getbasetemp()))


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("UET_RUN_ID", raising=False)
    yield Project(tmp_path)


@pytest.fixture
def fake_tools(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> FakeTools:
    """The fake AI CLIs first on PATH (never a real one), a HOME of their own, and their call
    log outside the project."""
    return use_fake_tools(tmp_path_factory.mktemp("fakes"), monkeypatch)


@pytest.fixture
def repo(
    project: Project, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Project:
    """The project as a git repository (git_support.make_repo) with the fake tools on PATH."""
    return make_repo(project, tmp_path_factory.mktemp("outside"), monkeypatch)
