"""Model prices, for the tools that report tokens but no dollars (Codex, Gemini).

The packaged table (`prices.json`) is dated: prices change, so every estimate names the
date it used, and router_config.json `prices` entries override or extend it. Cached input
tokens are charged at the full input rate, so an estimate errs high, never low: budgets
stay safe.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources

_PROVIDER_PREFIX = re.compile(r"^(openai|anthropic|gemini|google|vertex_ai|models)/", re.I)
_VERSION_SUFFIX = re.compile(r"(-\d{8}|-\d{4}-\d{2}-\d{2}|-latest|@\d{8})$")
#: where an override came from, shown instead of the packaged table's date
OVERRIDE_SOURCE = "router_config.json"


@dataclass(frozen=True)
class ModelPrice:
    """Dollars per million tokens, and where the figure came from."""

    input_per_mtok: float
    output_per_mtok: float
    as_of: str = ""

    def cost(self, tokens_in: int, tokens_out: int) -> float:
        return (tokens_in * self.input_per_mtok + tokens_out * self.output_per_mtok) / 1e6


@dataclass(frozen=True)
class Estimate:
    """A cost worked out from tokens; `cost_usd` is None when the model has no price."""

    cost_usd: float | None
    note: str


class PriceTable:
    """Model name -> price, with lenient matching of provider prefixes and dated names."""

    def __init__(self, prices: Mapping[str, ModelPrice], as_of: str) -> None:
        self._prices = {k.lower(): v for k, v in prices.items()}
        self.as_of = as_of

    def models(self) -> list[str]:
        return sorted(self._prices)

    def lookup(self, model: str | None) -> ModelPrice | None:
        """Exact name, then without `openai/`-style prefix and date, then longest known prefix."""
        if not model:
            return None
        name = model.strip().lower()
        candidates = [name, _PROVIDER_PREFIX.sub("", name)]
        candidates.append(_VERSION_SUFFIX.sub("", candidates[-1]))
        for candidate in candidates:
            if candidate in self._prices:
                return self._prices[candidate]
        base = candidates[-1]
        prefixes = [k for k in self._prices if base.startswith(k + "-")]
        return self._prices[max(prefixes, key=len)] if prefixes else None

    def estimate(self, model: str | None, tokens_in: int, tokens_out: int) -> Estimate:
        """The cost of these tokens, with a note saying which price was used or why none."""
        if not model:
            return Estimate(None, "cost unknown: the model is not known (set `model`)")
        price = self.lookup(model)
        if price is None:
            return Estimate(
                None,
                f"cost unknown: no price for model {model!r}; add it under `prices` in "
                f"{OVERRIDE_SOURCE}",
            )
        source = price.as_of or self.as_of
        return Estimate(
            price.cost(tokens_in, tokens_out),
            f"cost from price table ({model}: ${price.input_per_mtok:g}/"
            f"${price.output_per_mtok:g} per Mtok in/out, prices as of {source})",
        )

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
    """Dollars for these tokens, or None when the model has no known price."""
    table = default_price_table().with_overrides(overrides or {})
    return table.estimate(model, tokens_in, tokens_out).cost_usd
