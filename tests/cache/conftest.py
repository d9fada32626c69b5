"""Two clones of one project and the fake AI tools on PATH, for step cache runs."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from cache.clones import Clones

from uet_doit.testing import use_fake_tools

from support import Project


@pytest.fixture
def clones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Clones]:
    for name in list(os.environ):
        if name.startswith(("FAKE_", "UET_")) or name.endswith("_API_KEY"):
            monkeypatch.delenv(name)
    fakes = use_fake_tools(tmp_path, monkeypatch)  # UET_SANDBOX_ALLOW_WRITE: tmp_path
    first, second = Project(tmp_path / "clone1"), Project(tmp_path / "clone2")
    for project in (first, second):
        project.root.mkdir()
    pair = Clones(first, second, fakes, monkeypatch)
    pair.use(first)
    yield pair
