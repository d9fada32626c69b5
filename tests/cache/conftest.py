"""Two clones of one project and the fake AI tools on PATH, for step cache runs."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cache.clones import Clones

from support import FAKE_TOOLS, Project


@pytest.fixture
def clones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Clones]:
    for name in list(os.environ):
        if name.startswith(("FAKE_", "UET_")) or name.endswith("_API_KEY"):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    (home / ".codex").mkdir(parents=True)
    (home / ".codex" / "config.toml").write_text('model = "gpt-5-codex"\n')
    monkeypatch.setenv("HOME", str(home))
    base = os.pathsep.join(dict.fromkeys([str(Path(sys.executable).parent), "/usr/bin", "/bin"]))
    monkeypatch.setenv("PATH", f"{FAKE_TOOLS}{os.pathsep}{base}")
    monkeypatch.setenv("FAKE_TOOL_LOG", str(tmp_path / "calls.jsonl"))
    monkeypatch.setenv("FAKE_STATE_DIR", str(tmp_path / "fake-state"))
    monkeypatch.setenv("UET_SANDBOX_ALLOW_WRITE", str(tmp_path))  # the fakes' logs
    first, second = Project(tmp_path / "clone1"), Project(tmp_path / "clone2")
    for project in (first, second):
        project.root.mkdir()
    pair = Clones(first, second, tmp_path / "calls.jsonl", monkeypatch)
    pair.use(first)
    yield pair
