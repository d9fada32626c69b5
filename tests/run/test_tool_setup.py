"""tool_setup: one resolution of a step's model, options, timeouts and fix rounds per tool."""

from __future__ import annotations

import json
from pathlib import Path

from uet_doit.bundle.effective import DEFAULT_TIMEOUT_SECONDS
from uet_doit.run.step_spec import StepSpec
from uet_doit.run.tool_setup import tool_setup
from uet_doit.tools.routing import AdapterRegistry

ROUTER = {
    "tools": {
        name: {"model": "m-router", "args": ["--x"], "env": {"K": "v"}, "timeout_seconds": 7,
               "stall_timeout_seconds": 5, "max_parallel": 2, "max_fix_attempts": 3}
        for name in ("aider", "shell")
    }
}  # fmt: skip


def step(root: Path, **own: object) -> StepSpec:
    values: dict[str, object] = {
        "bundle_id": "b", "ws_id": "W", "step_id": "s", "title": "s", "tool": "aider",
        "instruction": "do", "files": (), "create_files": (), "project_root": str(root),
        "signature": "sig", "timeout": None,
    }  # fmt: skip
    values.update(own)
    return StepSpec(**values)  # type: ignore[arg-type]


def test_router_settings_fill_what_the_step_leaves_open(tmp_path: Path) -> None:
    (tmp_path / "router_config.json").write_text(json.dumps(ROUTER), encoding="utf-8")
    tools = AdapterRegistry(tmp_path)
    ai = tool_setup(step(tmp_path, tool_options={"y": 1}), "aider", tools)
    assert (ai.model, ai.options, ai.tool_env) == (
        "m-router",
        {"args": ["--x"], "y": 1},
        {"K": "v"},
    )
    assert (ai.timeout, ai.stall_timeout, ai.max_parallel, ai.fix_rounds) == (7, 5, 2, 3)
    own = tool_setup(step(tmp_path, model="m", timeout=9.0, max_fix_attempts=0), "aider", tools)
    assert (own.model, own.timeout, own.fix_rounds) == ("m", 9.0, 0)
    # a local tool takes nothing from router_config.json and gets no fix round
    local = tool_setup(step(tmp_path), "shell", tools)
    assert (local.model, local.options, local.tool_env, local.max_parallel) == (None, {}, {}, None)
    assert (local.timeout, local.fix_rounds) == (DEFAULT_TIMEOUT_SECONDS, 0)
    assert tool_setup(step(tmp_path), "claude", tools).fix_rounds == 1  # the AI default
