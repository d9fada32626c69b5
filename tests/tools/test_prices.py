"""The dated price table: lookups, estimates and router_config.json overrides."""

from __future__ import annotations

import re

import pytest

from uet_doit.tools.prices import (
    CLI_DEFAULT_MODELS,
    ModelPrice,
    cost_from_tokens,
    default_price_table,
)


def test_table_is_dated_and_covers_the_three_vendors() -> None:
    table = default_price_table()
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", table.as_of)
    for model in ("gpt-4o", "gpt-5-codex", "claude-sonnet-4-5", "gemini-2.5-pro"):
        assert table.lookup(model) is not None


def test_the_models_the_four_clis_default_to_are_priced() -> None:
    """Codex 0.169 runs gpt-5.5, Claude Code reports claude-opus-4-8[1m], Gemini CLI picks
    Gemini 2.5/3 models itself (with a router model): none may be unpriced."""
    table = default_price_table()
    for model, _note in CLI_DEFAULT_MODELS.values():
        assert table.lookup(model) is not None, model
    for model in ("gpt-5.5", "gpt-5.4", "gpt-5.3-codex", "claude-opus-4-8[1m]",
                  "claude-sonnet-4-6", "gemini-3-flash-preview", "gemini-3.1-pro-preview",
                  "gemini-2.5-flash-lite"):  # fmt: skip
        assert table.lookup(model) is not None, model


@pytest.mark.parametrize(
    ("name", "base"),
    [
        ("GPT-4o", "gpt-4o"),
        ("openai/gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("anthropic/claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("claude-3-5-haiku-latest", "claude-3-5-haiku"),
        ("gemini/gemini-2.5-flash-lite", "gemini-2.5-flash-lite"),
        ("gemini-2.5-flash-preview-09-2025", "gemini-2.5-flash"),
        ("claude-opus-4-8[1m]", "claude-opus-4-8"),
        ("anthropic/claude-opus-4-8[1m]", "claude-opus-4-8"),
        ("gpt-5.5-2026-04-23", "gpt-5.5"),
        ("openai/gpt-5.3-codex", "gpt-5.3-codex"),
        ("gemini/gemini-3-flash-preview", "gemini-3-flash-preview"),
        ("models/gemini-3.1-pro-preview", "gemini-3.1-pro-preview"),
    ],
)
def test_lenient_lookup(name: str, base: str) -> None:
    table = default_price_table()
    assert table.lookup(name) == table.lookup(base)


def test_estimate_and_unknown_models() -> None:
    table = default_price_table()
    estimate = table.estimate("gpt-4o", 1_000_000, 100_000)
    assert estimate.cost_usd == pytest.approx(2.5 + 1.0)
    assert f"uet price table of {table.as_of}" in estimate.note
    assert table.lookup("gpt-4") is None and table.lookup("") is None
    unknown = table.estimate("llama-local", 10, 10)
    assert unknown.cost_usd is None and "router_config.json" in unknown.note
    assert table.estimate(None, 1, 1).cost_usd is None


def test_overrides_replace_and_add() -> None:
    overrides = {"gpt-4o": ModelPrice(1, 1, "router_config.json"), "llama-local": ModelPrice(0, 0)}
    assert cost_from_tokens("gpt-4o", 1_000_000, 1_000_000, overrides) == pytest.approx(2)
    assert cost_from_tokens("llama-local", 5, 5, overrides) == 0
    assert cost_from_tokens("llama-local", 5, 5) is None
    assert (
        "router_config.json"
        in default_price_table().with_overrides(overrides).estimate("gpt-4o", 1, 1).note
    )
