"""What a step will cost, before it runs: a range (low-high) and what it assumed.

A forecast multiplies tokens by a price. Tokens sent per attempt: the instruction, the
step's input files and the tool's own overhead per model call (system prompt, edit-format
examples, repo map, tool definitions), times the calls an attempt typically makes. Tokens
received: a default per task kind and file to write. Once the ledger holds attempts of the
same tool, model and task kind, their observed tokens and costs (median for the low end,
90th percentile for the high end) replace the defaults. The high end of a step also pays
for every retry and fix attempt it may make (`max_retries`, `max_fix_attempts`).

Pure: files are read through the `read_text` function passed in, prices and token counters
are parameters, history is a list of observations (or a `History` index of them). No clock,
no store, no printing.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from uet_doit.tools.adapters import tool_traits
from uet_doit.tools.prices import CLI_DEFAULT_MODELS, ModelPrice
from uet_doit.tools.tokens import BYTES_PER_TOKEN, TokenCounter, bytes_counter


@dataclass(frozen=True)
class ToolProfile:
    """Per model call: tokens the tool adds of its own; calls an attempt makes (low, high)."""

    model: str  # what the tool uses when nobody names a model
    model_note: str
    overhead: tuple[int, int]
    calls: tuple[int, int]


#: Documented defaults (docs/costs.md, "Forecast"); calibration from the ledger replaces them.
TOOL_PROFILES: dict[str, ToolProfile] = {
    # system prompt + edit-format examples ~1.2k; repo map up to 1k (--map-tokens 1024);
    # up to 3 reflections when an edit does not apply
    "aider": ToolProfile(*CLI_DEFAULT_MODELS["aider"], (1_200, 3_500), (1, 3)),
    # Claude Code: system prompt and tool definitions resent every turn; agentic turns
    "claude": ToolProfile(*CLI_DEFAULT_MODELS["claude"], (12_000, 20_000), (2, 10)),
    "codex": ToolProfile(*CLI_DEFAULT_MODELS["codex"], (6_000, 12_000), (2, 8)),
    "gemini": ToolProfile(*CLI_DEFAULT_MODELS["gemini"], (8_000, 15_000), (2, 8)),
}

#: tokens received per file the step writes (low, high), by task kind
OUTPUT_BY_KIND: dict[str, tuple[int, int]] = {
    "docs": (600, 4_000),
    "code": (400, 3_000),
    "testing": (400, 3_000),
    "refactor": (500, 4_000),
    "review": (100, 800),  # a verdict: a few sentences of evidence
}
DEFAULT_OUTPUT = (500, 4_000)
_KIND_ALIASES = {
    "documentation": "docs",
    "doc": "docs",
    "code_generation": "code",
    "code_edit": "code",
    "feature": "code",
    "tests": "testing",
    "test": "testing",
}
HIGH_PERCENTILE = 90


class Prices(Protocol):
    def lookup(self, model: str | None) -> ModelPrice | None: ...


@dataclass(frozen=True)
class StepPlan:
    """What is known of a step before it runs (resolved from bundle and router config)."""

    step_id: str
    ws_id: str
    tool: str
    instruction: str = ""
    files: tuple[str, ...] = ()
    create_files: tuple[str, ...] = ()
    task_kind: str | None = None
    model: str | None = None  # the step's own `model`
    router_model: str | None = None  # router_config.json tools.<tool>.model
    max_retries: int = 0
    max_fix_attempts: int = 0  # 0 when the step has no validation
    estimated_cost_usd: float | None = None
    #: the model the tool is configured to use outside uet (e.g. codex's config.toml), and where
    tool_default: tuple[str, str] | None = None
    #: the workstream's estimated_context_tokens: the context its steps need, counted as
    #: input when the step names no input file that exists
    context_tokens: int | None = None


@dataclass(frozen=True)
class Observation:
    """One recorded attempt, as the ledger has it."""

    tool: str
    model: str | None
    task_kind: str | None
    cost_usd: float | None
    tokens_in: int | None
    tokens_out: int | None


@dataclass(frozen=True)
class StepForecast:
    step_id: str
    ws_id: str
    tool: str
    model: str | None
    model_from: str
    tokens_in: tuple[int, int]  # one attempt, low/high
    tokens_out: tuple[int, int]
    price_source: str
    attempt_usd: tuple[float, float]  # one attempt, low/high
    max_attempts: int
    basis: str
    priced: bool = True
    assumptions: tuple[str, ...] = field(default_factory=tuple)
    #: an `auto` step: the tools the router could choose (the forecast spans them all)
    choices: tuple[str, ...] = ()
    #: why the step cannot run at all (an `auto` step with no tool to route to)
    cannot_run: str | None = None

    @property
    def low_usd(self) -> float:
        return self.attempt_usd[0]

    @property
    def high_usd(self) -> float:
        """Every attempt the step may make, each at the high end of one attempt."""
        return self.attempt_usd[1] * self.max_attempts

    @property
    def calibrated(self) -> bool:
        return self.basis.startswith("calibrated")


def kind_of(task_kind: str | None) -> str | None:
    if not task_kind:
        return None
    kind = task_kind.strip().lower()
    return _KIND_ALIASES.get(kind, kind)


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (the largest value for small samples)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


#: (tokens in low/high, tokens out low/high, cost low/high or None, basis) of one attempt
Calibration = tuple[tuple[int, int], tuple[int, int], tuple[float, float] | None, str] | None


class History:
    """Recorded attempts indexed once by tool and model, so forecasting thousands of steps
    does not rescan thousands of attempts per step."""

    def __init__(self, observations: Iterable[Observation] = ()) -> None:
        self._models: dict[str, Counter[str]] = {}
        self._useful: dict[tuple[str, str], list[Observation]] = {}
        self._memo: dict[tuple[str, str, str | None], Calibration] = {}
        for o in observations:
            if o.model:
                self._models.setdefault(o.tool, Counter())[o.model] += 1
            if (o.cost_usd or 0) > 0 or (o.tokens_in or 0) > 0:
                self._useful.setdefault((o.tool, (o.model or "").lower()), []).append(o)

    def usual_model(self, tool: str) -> tuple[str, int] | None:
        seen = self._models.get(tool)
        return seen.most_common(1)[0] if seen else None

    def matching(self, tool: str, model: str | None, task_kind: str | None) -> tuple[
        list[Observation], str
    ]:  # fmt: skip
        """Attempts of the same tool, model and task kind; else of the same tool and model."""
        useful = self._useful.get((tool, (model or "").lower()), [])
        kind = kind_of(task_kind)
        same_kind = [o for o in useful if kind_of(o.task_kind) == kind]
        label = f"{tool}/{model or '?'}"
        if same_kind:
            return same_kind, f"{label}/{kind or 'no task kind'}"
        return useful, f"{label} (any task kind)"

    def calibration(self, tool: str, model: str | None, task_kind: str | None) -> Calibration:
        """Observed tokens in and out and (when recorded) costs per attempt: median, high
        percentile; None without matching attempts. Worked out once per tool/model/kind."""
        key = (tool, (model or "").lower(), kind_of(task_kind))
        if key not in self._memo:
            matched, label = self.matching(tool, model, task_kind)
            if not matched:
                self._memo[key] = None
            else:
                tin = _low_high(o.tokens_in or 0 for o in matched)
                tout = _low_high(o.tokens_out or 0 for o in matched)
                costs = [o.cost_usd for o in matched if o.cost_usd is not None]
                basis = (
                    f"calibrated from {len(matched)} attempt(s) of {label}: median and "
                    f"{HIGH_PERCENTILE}th percentile"
                )
                self._memo[key] = (
                    (round(tin[0]), round(tin[1])),
                    (round(tout[0]), round(tout[1])),
                    _low_high(costs) if costs else None,
                    basis,
                )
        return self._memo[key]


def _resolve_model(
    plan: StepPlan, profile: ToolProfile | None, history: History
) -> tuple[str | None, str]:
    if plan.model:
        return plan.model, "the step's model"
    if plan.router_model:
        return plan.router_model, "router_config.json"
    usual = history.usual_model(plan.tool)
    if usual is not None:
        return usual[0], f"used by {plan.tool} in {usual[1]} earlier attempt(s)"
    if plan.tool_default is not None:
        return plan.tool_default
    if profile is not None:
        return profile.model, f"assumed: {profile.model_note}"
    return None, "unknown"


def _low_high(values: Iterable[float]) -> tuple[float, float]:
    found = list(values)
    return float(statistics.median(found)), float(percentile(found, HIGH_PERCENTILE))


#: what `read_text` returns: the text, its size in bytes when too large to read, or None
FileText = str | int | None


def _file_tokens(
    files: Sequence[str], read_text: Callable[[str], FileText], counter: TokenCounter
) -> tuple[int, list[str]]:
    total, notes = 0, []
    for name in files:
        text = read_text(name)
        if text is None:
            notes.append(f"{name}: not there yet, or a folder (counted as 0 tokens)")
        elif isinstance(text, int):
            total += round(text / BYTES_PER_TOKEN)
            notes.append(f"{name}: {text:,} bytes, counted at {BYTES_PER_TOKEN:g} bytes/token")
        else:
            total += counter.count(text)
    return total, notes


def forecast_step(
    plan: StepPlan,
    prices: Prices,
    read_text: Callable[[str], FileText],
    history: History | Sequence[Observation] = (),
    counter_for: Callable[[str | None], TokenCounter] | None = None,
) -> StepForecast:
    """A step's forecast: calibrated from `history` when it has matching attempts."""
    attempts = 1 + plan.max_retries + plan.max_fix_attempts
    profile = TOOL_PROFILES.get(plan.tool)
    if not isinstance(history, History):
        history = History(history)
    model, model_from = _resolve_model(plan, profile, history)
    price = prices.lookup(model)
    price_source = price.source if price else "no price"
    if plan.estimated_cost_usd is not None:
        est = plan.estimated_cost_usd
        return StepForecast(
            plan.step_id, plan.ws_id, plan.tool, model, model_from, (0, 0), (0, 0),
            "the bundle", (est, est), 1, "estimated_cost_usd of the step",
        )  # fmt: skip
    assumptions = [f"up to {attempts} attempt(s): 1 + {plan.max_retries} retries"]
    if plan.max_fix_attempts:
        assumptions[0] += f" + {plan.max_fix_attempts} fix attempt(s)"
    seen = history.calibration(plan.tool, model, plan.task_kind)
    if seen is not None:
        tin, tout, costs, basis = seen
        if costs is not None:
            usd = costs
        elif price is not None:
            usd = (price.cost(tin[0], tout[0]), price.cost(tin[1], tout[1]))
        else:
            usd = (0.0, 0.0)
        return StepForecast(
            plan.step_id, plan.ws_id, plan.tool, model, model_from, tin, tout,
            "observed costs" if costs else price_source, usd, attempts, basis,
            costs is not None or price is not None, tuple(assumptions),
        )  # fmt: skip
    if profile is None:
        note = (
            "no AI tokens: a local tool costs what it reports in $UET_RESULT_FILE"
            if tool_traits(plan.tool).local
            else f"no token model for tool {plan.tool!r}: forecast from its history only"
        )
        return StepForecast(
            plan.step_id, plan.ws_id, plan.tool, model, model_from, (0, 0), (0, 0),
            "-", (0.0, 0.0), attempts, "no history", True, (note,),
        )  # fmt: skip
    counter = (counter_for or _default_counter)(model)
    base = counter.count(plan.instruction)
    files, notes = _file_tokens(plan.files, read_text, counter)
    if not files and plan.context_tokens:
        files = plan.context_tokens
        notes.append(
            f"{files:,} tokens of context: the workstream's estimated_context_tokens "
            "(no input file known)"
        )
    base += files
    tin = (
        profile.calls[0] * (base + profile.overhead[0]),
        profile.calls[1] * (base + profile.overhead[1]),
    )
    kind = kind_of(plan.task_kind)
    per_file = OUTPUT_BY_KIND.get(kind or "", DEFAULT_OUTPUT)
    n_out = max(1, len(plan.create_files))
    # an edit of inputs (nothing to create) may rewrite them whole (aider's whole format)
    rewrite = 0 if plan.create_files or kind == "review" else files  # a reviewer only reads
    tout = (per_file[0] * n_out, per_file[1] * n_out + rewrite)
    assumptions += [
        f"tokens counted with {counter.name}",
        f"{profile.overhead[0]:,}-{profile.overhead[1]:,} tokens of {plan.tool}'s own per call,"
        f" {profile.calls[0]}-{profile.calls[1]} call(s) an attempt",
        f"{per_file[0]:,}-{per_file[1]:,} tokens out per file written ({kind or 'default'})",
        *notes,
    ]
    if price is None:
        assumptions.append(
            f"no price for model {model!r}: add it under `prices` in router_config.json"
        )
    usd = (price.cost(tin[0], tout[0]), price.cost(tin[1], tout[1])) if price else (0.0, 0.0)
    return StepForecast(
        plan.step_id, plan.ws_id, plan.tool, model, model_from, tin, tout, price_source,
        usd, attempts, "defaults (no history yet)", price is not None, tuple(assumptions),
    )  # fmt: skip


def auto_forecast(
    step_id: str, ws_id: str, options: Sequence[StepForecast], reason: str
) -> StepForecast:
    """An `auto` step: the range over the tools the router could choose for it (the lowest
    low, the highest high), shown with the dearest; or why it cannot run at all."""
    if not options:
        return StepForecast(
            step_id, ws_id, "auto", None, "-", (0, 0), (0, 0), "-", (0.0, 0.0), 1,
            "cannot run", True, (reason,), cannot_run=reason,
        )  # fmt: skip
    priced = [f for f in options if f.priced] or list(options)
    low = min(priced, key=lambda f: f.low_usd)
    high = max(priced, key=lambda f: f.high_usd)
    spans = ", ".join(f"{f.tool} ${f.low_usd:.4f}-${f.high_usd:.4f}" for f in options)
    return replace(
        high,
        attempt_usd=(low.low_usd, high.attempt_usd[1]),
        priced=any(f.priced for f in options),
        choices=tuple(f.tool for f in options),
        assumptions=(f"auto: {reason}; range over {spans}", *high.assumptions),
    )


def _default_counter(model: str | None) -> TokenCounter:
    return bytes_counter()


def total(forecasts: Iterable[StepForecast]) -> tuple[float, float]:
    """Low and high of several steps together."""
    items = list(forecasts)
    return sum(f.low_usd for f in items), sum(f.high_usd for f in items)
