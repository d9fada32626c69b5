"""The forecast's inputs gathered from a project: plans of steps, files, prices, history.

`run.forecast` is pure; this module does the reading for it: the bundle's steps resolved
against router_config.json, the input files' text, the ledger's recorded attempts and the
price layers (router_config.json `prices`, litellm's map when installed, the packaged table).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from uet_doit.bundle.effective import effective_resilience, effective_tool
from uet_doit.bundle.model import Bundle, Step, Workstream
from uet_doit.run.forecast.estimate import (
    FileText,
    History,
    Observation,
    StepForecast,
    StepPlan,
    auto_forecast,
    forecast_step,
)
from uet_doit.run.step_spec import StepSpec, step_reviewer
from uet_doit.run.tool_setup import fix_rounds
from uet_doit.state.store import RunStore
from uet_doit.tools.adapters import tool_traits
from uet_doit.tools.adapters.codex import configured_model
from uet_doit.tools.prices import LayeredPrices
from uet_doit.tools.routing import (
    RouterConfig,
    availability,
    load_router_config,
    price_table,
    route_step,
)
from uet_doit.tools.tokens import TokenCounter, token_counter

Available = Callable[[str], bool]
#: the most recent attempts a forecast learns from (fewer for one step about to run: its
#: reservation is made before every attempt and must stay cheap)
HISTORY_LIMIT = 2000
STEP_HISTORY_LIMIT = 200
#: larger input files are counted from their size (reading megabytes to count them is waste)
_READ_LIMIT = 2_000_000


def file_reader(root: Path) -> Callable[[str], FileText]:
    """Text of a project file for counting its tokens; its size when too large to read
    (counted by the bytes ratio); None when it does not exist or is a folder."""

    def read(rel: str) -> FileText:
        path = root / rel
        try:
            if path.is_dir():
                return None
            size = path.stat().st_size
            if size > _READ_LIMIT:
                return size
            return path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None

    return read


def prices_for(config: RouterConfig) -> LayeredPrices:
    return price_table(config)


def history(
    store: RunStore,
    kinds: dict[tuple[str, str], str | None] | None = None,
    before: float | None = None,
    tool: str | None = None,
    limit: int = HISTORY_LIMIT,
) -> list[Observation]:
    """Finished attempts, newest first; `kinds` maps (bundle_id, step_id) to a task kind
    (the ledger does not record it); `before` leaves out attempts started after it."""
    kinds = kinds or {}
    return [
        Observation(
            tool=row.tool,
            model=row.model,
            task_kind=kinds.get((row.bundle_id, row.step_id)),
            cost_usd=row.cost_usd,
            tokens_in=row.tokens_in,
            tokens_out=row.tokens_out,
        )
        for row in store.ledger.attempt_costs(before, tool, limit)
    ]


def _fix_attempts(own: int | None, tool: str, config: RouterConfig, validated: bool) -> int:
    if not validated:
        return 0
    return fix_rounds(own, tool_traits(tool).local, config.tool(tool).max_fix_attempts)


def auto_choices(
    bundle: Bundle, ws: Workstream, step: Step, config: RouterConfig, available: Available
) -> tuple[list[str], str] | None:
    """An `auto` step: the tools the router could choose for it (as a run routes it), and
    why; None for a step that names its tool."""
    if effective_tool(bundle, ws, step) != "auto":
        return None
    files = [*step.context.files, *step.context.create_files]
    decision = route_step(step.task_kind or ws.kind, files, config, available, auto=True)
    return decision.tools, decision.reason


def plan_for(
    bundle: Bundle,
    ws: Workstream,
    step: Step,
    config: RouterConfig,
    root: Path,
    tool: str | None = None,
) -> StepPlan:
    """What the forecast knows of a step, run with `tool` (default: its own)."""
    kind = step.task_kind or ws.kind
    tool = tool or effective_tool(bundle, ws, step)
    retries = effective_resilience(bundle, ws, step).max_retries or 0
    return StepPlan(
        step_id=step.step_id,
        ws_id=ws.ws_id,
        tool=tool,
        instruction=step.instruction,
        files=tuple(step.context.files),
        create_files=tuple(step.context.create_files),
        task_kind=kind,
        model=step.model or _option_model(step.tool_options),
        router_model=config.tool(tool).model,
        max_retries=retries,
        max_fix_attempts=_fix_attempts(
            step.max_fix_attempts, tool, config, step.validation is not None
        )
        + _review_fixes(bundle, ws, step),
        estimated_cost_usd=step.estimated_cost_usd,
        tool_default=tool_default(tool),
        context_tokens=ws.estimated_context_tokens,
    )


def _review_fixes(bundle: Bundle, ws: Workstream, step: Step) -> int:
    """A step reviewed before it lands may be sent back this many more times."""
    reviewer = step_reviewer(bundle, ws, step)
    return reviewer.max_fix_attempts if reviewer else 0


def _option_model(options: dict[str, object]) -> str | None:
    model = options.get("model")
    return str(model) if model else None


def bundle_kinds(bundle: Bundle) -> dict[tuple[str, str], str | None]:
    return {(bundle.bundle_id, s.step_id): s.task_kind or ws.kind for ws, s in bundle.steps()}


def bundle_forecasts(
    bundle: Bundle,
    root: Path,
    store: RunStore | None,
    only: set[str] | None = None,
    before: float | None = None,
    use_tokenizer: bool = True,
) -> list[StepForecast]:
    """Forecasts of a bundle's steps (those in `only`, when given), in bundle order."""
    config = load_router_config(root)
    prices = prices_for(config)
    seen = History(history(store, bundle_kinds(bundle), before) if store is not None else [])
    read = file_reader(root)
    counters: dict[str | None, TokenCounter] = {}

    def counter_for(model: str | None) -> TokenCounter:
        """One memoised counter per model: steps share input files (indexes, templates)."""
        if model not in counters:
            counters[model] = _memoised(token_counter(model, allow_tokenizer=use_tokenizer))
        return counters[model]

    available = availability(config, root)
    out = []
    for ws, step in bundle.steps():
        if only is not None and step.step_id not in only:
            continue
        auto = auto_choices(bundle, ws, step, config, available)
        if auto is None:
            plan = plan_for(bundle, ws, step, config, root)
            out.append(forecast_step(plan, prices, read, seen, counter_for))
            continue
        tools, reason = auto
        options = [
            forecast_step(plan_for(bundle, ws, step, config, root, t), prices, read, seen,
                          counter_for)
            for t in tools
        ]  # fmt: skip
        out.append(auto_forecast(step.step_id, ws.ws_id, options, reason))
    return out


def _memoised(counter: TokenCounter) -> TokenCounter:
    counts: dict[str, int] = {}

    def count(text: str) -> int:
        if text not in counts:
            counts[text] = counter.count(text)
        return counts[text]

    return TokenCounter(count, counter.name)


def tool_default(tool: str) -> tuple[str, str] | None:
    """A model the tool is configured with outside uet: codex's $CODEX_HOME/config.toml."""
    if tool != "codex":
        return None
    return _codex_default(os.environ.get("CODEX_HOME"), os.environ.get("HOME"))


@lru_cache(maxsize=8)
def _codex_default(codex_home: str | None, home: str | None) -> tuple[str, str] | None:
    env = {k: v for k, v in (("CODEX_HOME", codex_home), ("HOME", home)) if v}
    model = configured_model(env)
    return (model, "codex's config.toml") if model else None


def spec_forecast(spec: StepSpec, tool: str, store: RunStore, config: RouterConfig) -> StepForecast:
    """The forecast of a compiled step about to run with `tool` (for budget reservations)."""
    plan = StepPlan(
        step_id=spec.step_id,
        ws_id=spec.ws_id,
        tool=tool,
        instruction=spec.instruction,
        files=spec.files,
        create_files=spec.create_files,
        task_kind=spec.task_kind,
        model=spec.model or _option_model(spec.tool_options),
        router_model=config.tool(tool).model,
        max_retries=spec.retry.max_retries,
        max_fix_attempts=_fix_attempts(
            spec.max_fix_attempts, tool, config, spec.validation is not None
        )
        + (spec.review.max_fix_attempts if spec.review else 0),
        tool_default=tool_default(tool),
        context_tokens=spec.context_tokens,
    )
    kinds: dict[tuple[str, str], str | None] = {(spec.bundle_id, spec.step_id): spec.task_kind}
    seen = history(store, kinds, tool=tool, limit=STEP_HISTORY_LIMIT)
    root = Path(spec.project_root)
    return forecast_step(plan, prices_for(config), file_reader(root), seen, token_counter)
