"""The real aider against a local mock model: what uet records is what the model was asked.

Opt-in: runs when a real `aider` is found (`UET_REAL_AIDER=/path/to/aider`, or on PATH);
skipped otherwise (CI installs no AI CLI). The mock answers on 127.0.0.1 only.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from git_support import git, make_repo

from support import FIXTURES, Project

REAL_AIDER = os.environ.get("UET_REAL_AIDER") or shutil.which("aider") or ""
pytestmark = pytest.mark.skipif(
    not REAL_AIDER or "fake_tools" in REAL_AIDER, reason="no real aider installed"
)
GPT_4O = (2.5, 10.0)  # $ per Mtok in/out: what aider (litellm) prices gpt-4o at


@pytest.fixture
def mock_model() -> Iterator[Any]:
    sys.path.insert(0, str(FIXTURES))
    from mock_model import MockModel

    with MockModel() as model:
        yield model


def test_git_mode_cost_is_every_call_the_model_was_asked(
    project: Project,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    mock_model: Any,
) -> None:
    home = tmp_path_factory.mktemp("home")
    make_repo(project, home, monkeypatch)
    bin_dir = Path(REAL_AIDER).parent
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-mock")
    monkeypatch.setenv("OPENAI_API_BASE", mock_model.base_url)
    # aider's own files kept out of the worktree (the lead makes the adapter do this itself)
    own = ["--no-gitignore", "--map-tokens", "0", "--chat-history-file",
           str(home / "chat.md"), "--input-history-file", str(home / "input")]  # fmt: skip
    step = {
        "step_id": "s",
        "tool_profile_id": "aider",
        "model": "gpt-4o",
        "tool_options": {"git": True, "edit_format": "whole", "args": own},
        "timeout_seconds": 300,
        "context": {"files": ["notes.md"], "create_files": ["out/summary.md"],
                    "instruction": "Write the summary"},
    }  # fmt: skip
    project.bundle({"bundle_id": "real", "workstreams": [{"ws_id": "W", "steps": [step]}]})
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "bundle")
    result = project.uet("run", "bundle.yaml")
    assert result.code == 0, result.out + result.err
    calls = mock_model.calls
    assert calls and all(c["model"] == "gpt-4o" for c in calls), calls  # no commit messages
    asked = sum(c["prompt_tokens"] * GPT_4O[0] + c["completion_tokens"] * GPT_4O[1] for c in calls)
    recorded = project.status()["steps"][0]["cost_usd"]
    # aider prints two significant digits: the recorded cost is the asked-for one, rounded
    assert recorded == pytest.approx(asked / 1e6, rel=0.05)
