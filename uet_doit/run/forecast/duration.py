"""How long a step may take before any attempt of its tool was timed: its token forecast
read at a documented throughput, for the scheduler's longest-path ranking.

The forecast counts tokens, not seconds. One attempt's duration is the middle of its
tokens-in range read at INPUT_TOKENS_PER_SECOND (prompt processing and each call's round
trip) plus the middle of its tokens-out range written at OUTPUT_TOKENS_PER_SECOND. Only the
ranking uses it, and measured medians replace it as soon as an attempt of the tool succeeds
(run/scheduling.py), so the figures are deliberately rough (docs/runs.md).

Kept cheap for bundles of thousands of steps: one attempt (no retries), input files
counted by their size (one stat, no read), tokens by the bytes ratio, no prices, no ledger;
steps of local tools (no token model) are not forecast at all.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Collection
from pathlib import Path

from uet_doit.bundle.effective import effective_tool
from uet_doit.bundle.model import Bundle
from uet_doit.run.forecast.estimate import (
    TOOL_PROFILES,
    FileText,
    History,
    StepForecast,
    StepPlan,
    forecast_step,
)
from uet_doit.run.forecast.inputs import auto_choices
from uet_doit.tools.prices import ModelPrice
from uet_doit.tools.routing import availability, load_router_config
from uet_doit.tools.tokens import bytes_counter

#: tokens an AI tool takes in per second, its calls' latency included (documented default)
INPUT_TOKENS_PER_SECOND = 5_000.0
#: tokens an AI tool writes per second (documented default: a hosted model's decode speed)
OUTPUT_TOKENS_PER_SECOND = 50.0


def forecast_seconds(forecast: StepForecast) -> float | None:
    """One attempt's expected seconds; None when the forecast counts no tokens (a local
    tool, a step priced only by its `estimated_cost_usd`)."""
    tokens_in = sum(forecast.tokens_in) / 2
    tokens_out = sum(forecast.tokens_out) / 2
    if tokens_in <= 0 and tokens_out <= 0:
        return None
    return tokens_in / INPUT_TOKENS_PER_SECOND + tokens_out / OUTPUT_TOKENS_PER_SECOND


class _NoPrices:
    """Durations need no price; skipping the price layers keeps ranking fast."""

    def lookup(self, model: str | None) -> ModelPrice | None:
        return None


def _size_reader(root: Path) -> Callable[[str], FileText]:
    """An input file's size (counted by the bytes ratio); None when missing or a folder."""
    top = str(root)

    def size(rel: str) -> FileText:
        try:
            st = os.stat(os.path.join(top, rel))
        except (OSError, ValueError):
            return None
        return None if stat.S_ISDIR(st.st_mode) else st.st_size

    return size


def duration_forecasts(bundle: Bundle, root: Path, steps: Collection[str]) -> dict[str, float]:
    """step_id -> forecast seconds of one attempt, for those of `steps` an AI tool runs
    (an `auto` step: the tool the router would pick first)."""
    wanted = set(steps)
    todo = [
        (ws, step, effective_tool(bundle, ws, step))
        for ws, step in bundle.steps()
        if step.step_id in wanted
    ]
    todo = [(ws, step, tool) for ws, step, tool in todo if tool in TOOL_PROFILES or tool == "auto"]
    if not todo:
        return {}
    config = load_router_config(root)
    available = availability(config, root)
    read = _size_reader(root)
    counter = bytes_counter()
    prices, seen = _NoPrices(), History()
    out: dict[str, float] = {}
    for ws, step, named in todo:
        tool = named
        if named == "auto":
            choices = auto_choices(bundle, ws, step, config, available)
            if not choices or not choices[0] or choices[0][0] not in TOOL_PROFILES:
                continue
            tool = choices[0][0]
        plan = StepPlan(  # what sets one attempt's tokens; retries and model do not
            step_id=step.step_id,
            ws_id=ws.ws_id,
            tool=tool,
            instruction=step.instruction,
            files=tuple(step.context.files),
            create_files=tuple(step.context.create_files),
            task_kind=step.task_kind or ws.kind,
            context_tokens=ws.estimated_context_tokens,
        )
        forecast = forecast_step(plan, prices, read, seen, lambda _model: counter)
        seconds = forecast_seconds(forecast)
        if seconds is not None:
            out[step.step_id] = seconds
    return out
