"""Model prices, for the tools that report tokens but no dollars (Codex, Gemini), and forecasts.

The packaged table (`prices.json`) is dated: prices change, so every estimate names the
date it used, and router_config.json `prices` entries override or extend it. Cached input
tokens are charged at the full input rate, so an estimate errs high, never low: budgets
stay safe. Forecasts also consult the price map litellm ships (installed wherever aider is)
for the models it knows: it is maintained more often than our table.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from typing import Protocol

_PROVIDER_PREFIX = re.compile(
    r"^(openai|anthropic|gemini|google|vertex_ai|models|openrouter)/", re.I
)
_VERSION_SUFFIX = re.compile(r"(-\d{8}|-\d{4}-\d{2}-\d{2}|-latest|@\d{8})$")
#: a context-window or variant tag after the name: `claude-opus-4-8[1m]`
_TAG_SUFFIX = re.compile(r"\s*\[[^\]]*\]$")
#: where an override came from, shown instead of the packaged table's date
OVERRIDE_SOURCE = "router_config.json"
#: the price map inside the litellm package (what `litellm.model_cost` holds offline)
LITELLM_PRICE_FILE = "model_prices_and_context_window_backup.json"
_LITELLM_MODES = frozenset({"chat", "responses", "completion"})


#: the model each CLI uses when nobody names one (ai-tools.md, measured on these releases),
#: and how a forecast or an estimate says it assumed it
CLI_DEFAULT_MODELS: dict[str, tuple[str, str]] = {
    "aider": ("gpt-4o", "aider's default with an OpenAI key"),
    "claude": ("claude-opus-4-8", "Claude Code 2.1's default"),
    "codex": ("gpt-5.5", "Codex CLI 0.169's default"),
    # Gemini CLI picks its models itself: priced at its Pro model, so estimates err high
    "gemini": ("gemini-3.1-pro-preview", "Gemini CLI's automatic choice, at its Pro price"),
}


@dataclass(frozen=True)
class ModelPrice:
    """Dollars per million tokens, and where the figure came from."""

    input_per_mtok: float
    output_per_mtok: float
    as_of: str = ""

    def cost(self, tokens_in: int, tokens_out: int) -> float:
        return (tokens_in * self.input_per_mtok + tokens_out * self.output_per_mtok) / 1e6

    @property
    def source(self) -> str:
        """Where the figure came from, in words a user can check."""
        if self.as_of == OVERRIDE_SOURCE:
            return f"{OVERRIDE_SOURCE} prices"
        if self.as_of.startswith("litellm"):
            return f"{self.as_of} price map"
        return f"uet price table of {self.as_of}" if self.as_of else "uet price table"


@dataclass(frozen=True)
class Estimate:
    """A cost worked out from tokens; `cost_usd` is None when the model has no price."""

    cost_usd: float | None
    note: str


@lru_cache(maxsize=4096)
def model_names(model: str) -> tuple[str, ...]:
    """The names to look a model up by, most exact first: as given (lower case), without a
    `[1m]`-style tag, without a provider prefix (`openai/`), without a date suffix.
    Memoised: a forecast looks the same few models up once per step."""
    names = [model.strip().lower()]
    names.append(_TAG_SUFFIX.sub("", names[-1]))
    names.append(_PROVIDER_PREFIX.sub("", names[-1]))
    names.append(_VERSION_SUFFIX.sub("", names[-1]))
    return tuple(dict.fromkeys(n for n in names if n))


def estimate_with(prices: Prices, model: str | None, tokens_in: int, tokens_out: int) -> Estimate:
    """The cost of these tokens, with a note saying which price was used or why none."""
    if not model:
        return Estimate(None, "cost unknown: the model is not known (set `model`)")
    price = prices.lookup(model)
    if price is None:
        return Estimate(
            None,
            f"cost unknown: no price for model {model!r}; add it under `prices` in "
            f"{OVERRIDE_SOURCE}",
        )
    return Estimate(
        price.cost(tokens_in, tokens_out),
        f"cost from {price.source} ({model}: ${price.input_per_mtok:g}/"
        f"${price.output_per_mtok:g} per Mtok in/out)",
    )


class Prices(Protocol):
    """Anything that prices a model by name (a table, or the layered chain)."""

    def lookup(self, model: str | None) -> ModelPrice | None: ...


class PriceTable:
    """Model name -> price, with lenient matching of tags, provider prefixes and dates."""

    def __init__(self, prices: Mapping[str, ModelPrice], as_of: str) -> None:
        self._prices: dict[str, ModelPrice] = {}
        for name, price in prices.items():
            self._prices[name.lower()] = price
        for name, price in prices.items():  # `gemini/x` is also found as `x`, exact names win
            for alias in model_names(name)[1:]:
                self._prices.setdefault(alias, price)
        self.as_of = as_of

    def models(self) -> list[str]:
        return sorted(self._prices)

    def lookup(self, model: str | None) -> ModelPrice | None:
        """Each of `model_names`, then the longest known name the base name starts with."""
        if not model:
            return None
        names = model_names(model)
        for candidate in names:
            if candidate in self._prices:
                return self._prices[candidate]
        base = names[-1]
        prefixes = [k for k in self._prices if base.startswith(k + "-")]
        return self._prices[max(prefixes, key=len)] if prefixes else None

    def estimate(self, model: str | None, tokens_in: int, tokens_out: int) -> Estimate:
        return estimate_with(self, model, tokens_in, tokens_out)

    def with_overrides(self, overrides: Mapping[str, ModelPrice]) -> PriceTable:
        """A copy where `overrides` (from router_config.json) replace or add models."""
        if not overrides:
            return self
        merged = dict(self._prices)
        merged.update({k.lower(): v for k, v in overrides.items()})
        return PriceTable(merged, self.as_of)


@cache
def default_price_table() -> PriceTable:
    """The packaged, dated table (read once)."""
    text = resources.files("uet_doit.tools").joinpath("prices.json").read_text(encoding="utf-8")
    data = json.loads(text)
    as_of = str(data["as_of"])
    prices = {
        name: ModelPrice(float(p["input_per_mtok"]), float(p["output_per_mtok"]), as_of)
        for name, p in data["models"].items()
    }
    return PriceTable(prices, as_of)


def cost_from_tokens(
    model: str | None,
    tokens_in: int,
    tokens_out: int,
    overrides: Mapping[str, ModelPrice] | None = None,
) -> float | None:
    """Dollars for these tokens, or None when the model has no known price (the same
    chain as forecasts: `overrides`, litellm's map, the packaged table)."""
    return forecast_prices(overrides).estimate(model, tokens_in, tokens_out).cost_usd


def _litellm_file() -> tuple[str, str] | None:
    """(path of litellm's packaged price map, litellm's version), found without importing
    litellm: importing it is slow and, unless told otherwise, fetches the map online."""
    try:
        spec = importlib.util.find_spec("litellm")
    except (ImportError, ValueError):
        return None
    locations = list(spec.submodule_search_locations or ()) if spec else []
    for folder in locations:
        path = os.path.join(folder, LITELLM_PRICE_FILE)
        if os.path.isfile(path):
            from importlib import metadata

            try:
                version = metadata.version("litellm")
            except metadata.PackageNotFoundError:
                version = "?"
            return path, version
    return None


def litellm_table_from(data: Mapping[str, object], label: str) -> PriceTable:
    """Chat models of a litellm price map (dollars per token) as a PriceTable."""
    prices: dict[str, ModelPrice] = {}
    for name, entry in data.items():
        if not isinstance(entry, dict) or entry.get("mode", "chat") not in _LITELLM_MODES:
            continue
        tin, tout = entry.get("input_cost_per_token"), entry.get("output_cost_per_token")
        if not isinstance(tin, int | float) or not isinstance(tout, int | float):
            continue
        if name == "sample_spec":
            continue
        prices[name] = ModelPrice(float(tin) * 1e6, float(tout) * 1e6, label)
    return PriceTable(prices, label)


@cache
def litellm_price_table() -> PriceTable | None:
    """litellm's model price map when litellm is installed (no network), else None."""
    found = _litellm_file()
    if found is None:
        return None
    path, version = found
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    return litellm_table_from(data, f"litellm {version}") if isinstance(data, dict) else None


@dataclass(frozen=True)
class LayeredPrices:
    """router_config.json `prices`, then litellm's map, then the packaged table: the first
    that knows a model prices it (each with lenient name matching)."""

    layers: tuple[PriceTable, ...]

    def lookup(self, model: str | None) -> ModelPrice | None:
        for table in self.layers:
            price = table.lookup(model)
            if price is not None:
                return price
        return None

    def estimate(self, model: str | None, tokens_in: int, tokens_out: int) -> Estimate:
        return estimate_with(self, model, tokens_in, tokens_out)


def forecast_prices(
    overrides: Mapping[str, ModelPrice] | None = None, use_litellm: bool = True
) -> LayeredPrices:
    """The prices a forecast uses, most specific first."""
    layers: list[PriceTable] = []
    if overrides:
        layers.append(PriceTable(overrides, OVERRIDE_SOURCE))
    litellm = litellm_price_table() if use_litellm else None
    if litellm is not None:
        layers.append(litellm)
    layers.append(default_price_table())
    return LayeredPrices(tuple(layers))
