"""How a step runs one tool: its own settings over router_config.json's, resolved in one place.

Attempts (run/policy.py), cache keys (cache/lookup.py) and forecasts (run/forecast/) read it,
so they never disagree on a model, a timeout or a fix round.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from uet_doit.bundle.effective import DEFAULT_TIMEOUT_SECONDS
from uet_doit.run.step_spec import StepSpec
from uet_doit.tools.routing import AdapterRegistry, ToolSettings


@dataclass(frozen=True)
class ToolSetup:
    """How a step runs one tool: the step's own settings, else router_config.json's
    `tools.<tool>` (never for a local tool), else the defaults. Attempts, cache keys, budgets
    and forecasts all read it, so they never disagree on a model or a fix round."""

    tool: str
    model: str | None
    options: dict[str, Any]  # router `args`, then the step's tool_options over them
    tool_env: dict[str, str]  # router `env` (the step's own env goes over it)
    timeout: float
    stall_timeout: float | None
    max_parallel: int | None
    fix_rounds: int  # times a validation failure goes back to the tool to fix


_NO_SETTINGS = ToolSettings()


def tool_setup(spec: StepSpec, tool: str, tools: AdapterRegistry) -> ToolSetup:
    """`spec` run with `tool`, in the project of `tools` (its router_config.json and adapters)."""
    local = tools.traits(tool).local
    settings = _NO_SETTINGS if local else tools.settings(tool)
    options: dict[str, Any] = {"args": list(settings.args)} if settings.args else {}
    options.update(spec.tool_options)
    return ToolSetup(
        tool=tool,
        model=spec.model or settings.model,
        options=options,
        tool_env=dict(settings.env),
        timeout=spec.timeout or settings.timeout_seconds or DEFAULT_TIMEOUT_SECONDS,
        stall_timeout=spec.stall_timeout or settings.stall_timeout_seconds,
        max_parallel=settings.max_parallel,
        fix_rounds=fix_rounds(spec.max_fix_attempts, local, settings.max_fix_attempts),
    )


def fix_rounds(own: int | None, local: bool, configured: int | None) -> int:
    """How often a failed validation goes back to the tool: the step's own count, else the
    router's, else one for AI tools and none for local ones."""
    if own is not None:
        return own
    if configured is not None and not local:
        return configured
    return 0 if local else 1
