"""Effective settings of a step: its own, else its workstream's, else the bundle's, else
the defaults here. Pure: reads the model, decides nothing else."""

from __future__ import annotations

from typing import Any

from uet_doit.bundle.fields import Isolation
from uet_doit.bundle.model import (
    Bundle,
    CircuitBreakerPolicy,
    Resilience,
    Review,
    Step,
    WorkspaceSetup,
    Workstream,
)

# Effective settings: step, then workstream, then bundle, then these defaults.
DEFAULT_RESILIENCE = Resilience(
    max_retries=2,
    backoff_strategy="exponential",
    initial_delay=1.0,
    max_delay=60.0,
    jitter=0.1,
    retry_on=["timeout", "rate_limit", "transient_error", "stalled"],
)
DEFAULT_TIMEOUT_SECONDS = 3600.0
DEFAULT_BREAKER = CircuitBreakerPolicy(failure_threshold=5, timeout_seconds=300, half_open_after=60)


def effective_resilience(bundle: Bundle, ws: Workstream, step: Step) -> Resilience:
    """Step over workstream over bundle over defaults; every layer was validated already."""
    layers = [r for r in (bundle.resilience, ws.resilience, step.resilience) if r is not None]
    if not layers:
        return DEFAULT_RESILIENCE
    merged: dict[str, Any] = dict(DEFAULT_RESILIENCE.__dict__)
    for layer in layers:
        merged.update({k: getattr(layer, k) for k in layer.model_fields_set})
    return Resilience.model_construct(**merged)


def effective_timeout(bundle: Bundle, ws: Workstream, step: Step) -> float | None:
    """The nearest timeout the bundle sets; None lets the tool's router setting decide."""
    return step.timeout_seconds or ws.timeout_seconds or bundle.timeout_seconds


def effective_stall_timeout(bundle: Bundle, ws: Workstream, step: Step) -> float | None:
    """The nearest `stall_timeout_seconds`; None lets the tool's router setting decide."""
    return step.stall_timeout_seconds or ws.stall_timeout_seconds or bundle.stall_timeout_seconds


def effective_tool(bundle: Bundle, ws: Workstream, step: Step) -> str:
    """The step's tool; a step with a `command` (or `callable`) and no tool is a shell
    (python) step, and anything else unnamed is routed (`auto`)."""
    named = step.tool_profile_id or ws.tool_profile_id or bundle.tool_profile_id
    if step.tool_profile_id is None and step.context.command:
        return "shell"
    if step.tool_profile_id is None and step.context.callable:
        return "python"
    return named or "auto"


def effective_breaker(bundle: Bundle, ws: Workstream) -> CircuitBreakerPolicy:
    return ws.circuit_breaker or bundle.circuit_breaker or DEFAULT_BREAKER


def explicit_isolation(bundle: Bundle, ws: Workstream, step: Step) -> Isolation | None:
    return step.isolation or ws.isolation or bundle.isolation


#: the workspace of a step no level configures (shared: it is only read)
_NO_WORKSPACE = WorkspaceSetup()


def effective_workspace(bundle: Bundle, ws: Workstream, step: Step) -> WorkspaceSetup:
    """The nearest `workspace` (the folder of worktrees is the bundle's)."""
    nearest = step.workspace or ws.workspace or bundle.workspace
    if nearest is None:
        return _NO_WORKSPACE
    folder = bundle.workspace.dir if bundle.workspace else None
    if nearest.dir or folder is None:
        return nearest
    return nearest.model_copy(update={"dir": folder})


def effective_review(
    bundle: Bundle, ws: Workstream | None, step: Step | None = None
) -> Review | None:
    """Each field from the nearest level that sets it (step, workstream, bundle); None when
    no level names a reviewer tool. `ws` None: the bundle's own criteria."""
    levels = (bundle.review, ws.review if ws else None, step.review if step else None)
    layers = [r for r in levels if r is not None]
    merged: dict[str, Any] = {}
    for layer in layers:
        merged.update({k: getattr(layer, k) for k in layer.model_fields_set})
    if not merged.get("tool"):
        return None
    return Review.model_construct(**{**dict.fromkeys(Review.model_fields), **merged})
