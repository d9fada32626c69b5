"""The real aider against a local mock model: what uet records is what the model was asked.

Opt-in: runs when a real `aider` is found (`UET_REAL_AIDER=/path/to/aider`, or on PATH);
skipped otherwise (CI installs no AI CLI). The mock answers on 127.0.0.1 only.
"""

from __future__ import annotations

import json
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
def mock_model(
    project: Project, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    """The mock model, and the project a git repository whose aider is the real one, its
    history files kept outside (`mock_model.own_files`: the arguments that do that)."""
    sys.path.insert(0, str(FIXTURES))
    from mock_model import MockModel

    home = tmp_path_factory.mktemp("home")
    make_repo(project, home, monkeypatch)
    monkeypatch.setenv("PATH", f"{Path(REAL_AIDER).parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-mock")
    with MockModel() as model:
        monkeypatch.setenv("OPENAI_API_BASE", model.base_url)
        model.own_files = ["--chat-history-file", str(home / "chat.md"),
                           "--input-history-file", str(home / "input")]  # fmt: skip
        yield model


def test_git_mode_cost_is_every_call_the_model_was_asked(project: Project, mock_model: Any) -> None:
    """In git mode, in its worktree and sandbox, with only the adapter's own flags: one
    commit holding only the step's output lands, aider's files stay out of the project."""
    step = {
        "step_id": "s",
        "tool_profile_id": "aider",
        "model": "gpt-4o",
        "tool_options": {"git": True, "edit_format": "whole"},
        "timeout_seconds": 300,
        "context": {"files": ["notes.md"], "create_files": ["out/summary.md"],
                    "instruction": "Write the summary"},
    }  # fmt: skip
    project.bundle({"bundle_id": "real", "workstreams": [{"ws_id": "W", "steps": [step]}]})
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "bundle")
    result = project.uet("run", "bundle.yaml")
    assert result.code == 0, result.out + result.err
    landed = git(project, "show", "--format=", "--name-only", "main").split()
    assert landed == ["out/summary.md"]
    assert not list(project.root.glob(".aider*")) and not (project.root / ".gitignore").exists()
    calls = mock_model.calls
    assert calls and all(c["model"] == "gpt-4o" for c in calls), calls  # no commit messages
    asked = sum(c["prompt_tokens"] * GPT_4O[0] + c["completion_tokens"] * GPT_4O[1] for c in calls)
    recorded = project.status()["steps"][0]["cost_usd"]
    # aider prints two significant digits: the recorded cost is the asked-for one, rounded
    assert recorded == pytest.approx(asked / 1e6, rel=0.05)


def test_a_model_aider_cannot_price_is_unknown_then_priced_by_router_config(
    project: Project, mock_model: Any
) -> None:
    own = mock_model.own_files

    def step(step_id: str) -> dict[str, Any]:
        return {
            "step_id": step_id,
            "tool_profile_id": "aider",
            "model": "openai/my-local-model",
            "isolation": "none",
            "tool_options": {"edit_format": "whole", "args": own},
            "timeout_seconds": 300,
            "context": {"files": ["notes.md"], "create_files": [f"out/{step_id}.md"],
                        "instruction": "Write the summary"},
        }  # fmt: skip

    project.bundle({"bundle_id": "local", "workstreams": [{"ws_id": "W", "steps": [step("a")]}]})
    assert project.uet("run", "bundle.yaml").code == 0
    [a] = project.status()["steps"]
    assert a["cost_usd"] is None and "no price for model" in a["cost_unknown_reason"]
    project.write(
        "router_config.json",
        json.dumps({"prices": {"my-local-model": {"input_per_mtok": 1, "output_per_mtok": 2}}}),
    )
    project.bundle({"bundle_id": "local", "workstreams": [{"ws_id": "W", "steps": [step("b")]}]})
    assert project.uet("run", "bundle.yaml").code == 0
    [b] = project.status()["steps"]
    call = mock_model.calls[-1]
    asked = (call["prompt_tokens"] * 1 + call["completion_tokens"] * 2) / 1e6
    # aider rounds its token figures (`2.3k`): within a few percent of what was asked
    assert b["cost_usd"] == pytest.approx(asked, rel=0.05)
