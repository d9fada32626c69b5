"""uet_doit.testing as a custom adapter's author uses it: the fake CLIs on PATH for a
`uet run` of their adapter, and the scripted executor's message when its script runs out."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from uet_doit.testing import FAKE_TOOLS, ScriptedExecutor, fake_tools_on_path, use_fake_tools

from support import Project, attempt_rows

#: the docstring's custom adapter: the fake claude, called its own way
ADAPTER = """
import json

from uet_doit import Invocation, ToolAdapter, ToolResult


class Adr(ToolAdapter):
    name = "adr"
    executable = "claude"

    def build(self, request):
        files = "".join(f"- {name}\\n" for name in request.create_files)
        prompt = f"{request.instruction}\\n\\nFiles to create or update:\\n{files}"
        argv = ["claude", "-p", "--output-format", "json", "--permission-mode", "acceptEdits"]
        argv += ["--", prompt]
        return Invocation(argv, request.env, request.project_root)

    def parse(self, request, proc):
        data = json.loads(proc.stdout.strip().splitlines()[-1])
        ok = proc.exit_code == 0 and not data["is_error"]
        return ToolResult(ok, proc.exit_code, cost_usd=data["total_cost_usd"])
"""


def test_a_custom_adapter_runs_against_the_fake_claude(
    project: Project, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    fakes = use_fake_tools(tmp_path_factory.mktemp("fakes"), monkeypatch, "claude")
    project.write("adr_adapter.py", ADAPTER)
    project.write(
        "router_config.json",
        '{"custom_adapters": {"adr": {"module": "adr_adapter", "class": "Adr"}}}',
    )
    context = {"instruction": "Write the ADR", "create_files": ["docs/adr.md"]}
    step = {"step_id": "adr", "tool_profile_id": "adr", "context": context}
    project.bundle({"bundle_id": "t", "workstreams": [{"ws_id": "W", "steps": [step]}]})

    result = project.uet("run", "bundle.yaml")

    assert result.code == 0, result.out + result.err
    assert (project.root / "docs" / "adr.md").exists()
    [call] = fakes.calls("claude")
    assert call["argv"][:3] == ["-p", "--output-format", "json"]
    assert "Write the ADR" in call["argv"][-1]
    assert attempt_rows(project, "adr")[0]["cost_usd"] > 0


def test_fake_tools_on_path_puts_the_environment_back(tmp_path: Path) -> None:
    before = dict(os.environ)
    with fake_tools_on_path(tmp_path, "aider") as fakes:
        assert os.environ["PATH"].split(os.pathsep)[0] == str(fakes.bin_dir)
        assert (fakes.bin_dir / "aider").resolve() == FAKE_TOOLS / "aider"
        assert not (fakes.bin_dir / "claude").exists()
        assert os.environ["FAKE_TOOL_LOG"] == str(fakes.log)
    assert dict(os.environ) == before


def test_an_unknown_fake_tool_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no fake tool cursor: there are aider, claude"):
        fake_tools_on_path(tmp_path, "cursor").__enter__()


def test_a_script_that_runs_out_says_which_tool_needs_one_more() -> None:
    spec: Any = SimpleNamespace(tool="aider", attempt=2, step_id="s1")  # what it reads of one
    with pytest.raises(AssertionError, match=r"no result left for tool 'aider' \(attempt 2"):
        ScriptedExecutor(aider=[]).submit(spec)
