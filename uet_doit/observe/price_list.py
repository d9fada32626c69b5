"""`uet cost --prices`: which price, from which source, each model gets.

The models are those this project's attempts recorded, the ones router_config.json names,
and the four CLIs' defaults; each is looked up through the one price chain (router_config
`prices`, litellm's map when installed, the packaged table) that actual costs and forecasts
use, so what it shows is what uet charges (cli/render_costs.py prints the table).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from uet_doit.state.store import RunStore
from uet_doit.tools.prices import CLI_DEFAULT_MODELS, model_names
from uet_doit.tools.routing import RouterConfig, load_router_config, price_table


def price_rows(root: Path, store: RunStore | None) -> list[dict[str, Any]]:
    """One row per model: where it was seen, its price per Mtok and the source, or why none."""
    config = load_router_config(root)
    prices = price_table(config)
    seen: dict[str, dict[str, Any]] = {}

    def add(model: str, where: str) -> None:
        row = seen.setdefault(model, {"model": model, "seen": []})
        row["seen"].append(where)

    for tool, model, attempts in store.ledger.models_used() if store is not None else []:
        add(model, f"{tool}: {attempts} attempt(s)")
    for tool, model in _configured(config):
        add(model, f"router_config.json tools.{tool}.model")
    for tool, (model, _note) in CLI_DEFAULT_MODELS.items():
        add(model, f"{tool}'s default")
    for row in seen.values():
        price = prices.lookup(row["model"])
        names = model_names(row["model"])
        row["looked_up_as"] = names[-1] if len(names) > 1 else None
        if price is None:
            row.update(input_per_mtok=None, output_per_mtok=None, source=None)
            row["note"] = "unknown: add it under `prices` in router_config.json"
        else:
            row.update(
                input_per_mtok=price.input_per_mtok,
                output_per_mtok=price.output_per_mtok,
                source=price.source,
            )
    return list(seen.values())


def _configured(config: RouterConfig) -> list[tuple[str, str]]:
    return [(name, t.model) for name, t in sorted(config.tools.items()) if t.model]
