"""The cost forecast (pure): model, tokens, prices, calibration from history, retries."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from uet_doit.run.forecast.estimate import (
    HIGH_PERCENTILE,
    Observation,
    StepPlan,
    forecast_step,
    percentile,
    total,
)
from uet_doit.tools.prices import (
    LayeredPrices,
    ModelPrice,
    PriceTable,
    default_price_table,
    forecast_prices,
    litellm_table_from,
)
from uet_doit.tools.tokens import (
    BYTES_PER_TOKEN,
    bytes_counter,
    cached_encoding_dir,
    token_counter,
)

PACKAGED = LayeredPrices((default_price_table(),))
FILES = {"notes.md": "n" * 4000}  # 1000 tokens at 4 bytes a token


def read(name: str) -> str | int | None:
    return 8_000_000 if name == "huge.bin" else FILES.get(name)


def plan(**extra: object) -> StepPlan:
    base: dict[str, object] = {
        "step_id": "s1",
        "ws_id": "WS",
        "tool": "aider",
        "instruction": "i" * 400,  # 100 tokens
        "files": ("notes.md",),
        "create_files": ("out/a.md",),
        "task_kind": "docs",
    }
    base.update(extra)
    return StepPlan(**base)  # type: ignore[arg-type]


def obs(cost: float | None, tin: int = 2300, tout: int = 150, **extra: object) -> Observation:
    base: dict[str, object] = {
        "tool": "aider",
        "model": "gpt-4o",
        "task_kind": "docs",
        "cost_usd": cost,
        "tokens_in": tin,
        "tokens_out": tout,
    }
    base.update(extra)
    return Observation(**base)  # type: ignore[arg-type]


def test_defaults_count_instruction_files_and_the_tools_overhead() -> None:
    f = forecast_step(plan(max_retries=2), PACKAGED, read)
    assert f.model == "gpt-4o" and "assumed" in f.model_from
    # one call of (100 + 1000 + 1200) tokens low, three calls of (1100 + 3500) high
    assert f.tokens_in == (2300, 3 * 4600)
    assert f.tokens_out == (600, 4000)
    price = default_price_table().lookup("gpt-4o")
    assert price is not None
    assert f.attempt_usd == pytest.approx((price.cost(2300, 600), price.cost(13800, 4000)))
    assert f.max_attempts == 3 and f.high_usd == pytest.approx(3 * f.attempt_usd[1])
    assert f.low_usd > 0 and f.price_source.startswith("uet price table of ")
    assert not f.calibrated and "defaults" in f.basis
    assert any(f"~{BYTES_PER_TOKEN:g} bytes/token" in a for a in f.assumptions)


def test_the_fix_loop_and_more_files_widen_the_high_end() -> None:
    plain = forecast_step(plan(), PACKAGED, read)
    fixing = forecast_step(plan(max_retries=3, max_fix_attempts=1), PACKAGED, read)
    assert fixing.max_attempts == 5 and fixing.high_usd == pytest.approx(5 * plain.high_usd)
    three = forecast_step(plan(create_files=("a", "b", "c")), PACKAGED, read)
    assert three.tokens_out == (1800, 12000)
    bigger = forecast_step(plan(files=("notes.md", "notes.md")), PACKAGED, read)
    assert bigger.tokens_in[0] == plain.tokens_in[0] + 1000


def test_model_comes_from_the_step_then_the_router_then_history_then_the_tool() -> None:
    assert forecast_step(plan(model="gpt-4.1", router_model="o3"), PACKAGED, read).model == (
        "gpt-4.1"
    )
    routed = forecast_step(plan(router_model="o3"), PACKAGED, read)
    assert (routed.model, routed.model_from) == ("o3", "router_config.json")
    seen = forecast_step(plan(), PACKAGED, read, [obs(0.01, model="claude-sonnet-4-5")])
    assert seen.model == "claude-sonnet-4-5" and "earlier attempt" in seen.model_from
    claude = forecast_step(plan(tool="claude"), PACKAGED, read)
    assert claude.model == "claude-opus-4-8" and claude.tokens_in[0] > 12_000


def test_missing_inputs_and_unknown_prices_are_said() -> None:
    f = forecast_step(plan(files=("docs/gone.md",)), PACKAGED, read)
    assert any("docs/gone.md: not there yet" in a for a in f.assumptions)
    huge = forecast_step(plan(files=("huge.bin",)), PACKAGED, read)
    assert huge.tokens_in[0] == 100 + 2_000_000 + 1200
    assert any("huge.bin: 8,000,000 bytes" in a for a in huge.assumptions)
    unknown = forecast_step(plan(model="llama-local"), PACKAGED, read)
    assert not unknown.priced and unknown.high_usd == 0
    assert any("router_config.json" in a for a in unknown.assumptions)


def test_calibrated_from_the_same_tool_model_and_kind() -> None:
    history = [obs(c) for c in (0.01, 0.02, 0.03, 0.10)]
    history += [obs(5.0, task_kind="code"), obs(7.0, tool="claude")]
    f = forecast_step(plan(max_retries=1), PACKAGED, read, history)
    assert f.calibrated and "4 attempt(s) of aider/gpt-4o/docs" in f.basis
    assert f.attempt_usd == pytest.approx((0.025, 0.10))  # median, 90th percentile
    assert f.high_usd == pytest.approx(0.20) and f.price_source == "observed costs"
    assert f.tokens_in == (2300, 2300)
    other_kind = forecast_step(plan(task_kind="testing"), PACKAGED, read, history)
    assert "any task kind" in other_kind.basis and other_kind.attempt_usd[1] == 5.0


def test_history_of_tokens_only_is_priced() -> None:
    history = [obs(None, tin=1_000_000, tout=0, tool="codex", model="gpt-4o")]
    f = forecast_step(plan(tool="codex"), PACKAGED, read, history)
    assert f.calibrated and f.attempt_usd == pytest.approx((2.5, 2.5))


def test_estimates_and_local_tools() -> None:
    fixed = forecast_step(plan(estimated_cost_usd=0.3, max_retries=4), PACKAGED, read)
    assert (fixed.low_usd, fixed.high_usd) == (0.3, 0.3)
    shell = forecast_step(plan(tool="shell"), PACKAGED, read)
    assert shell.high_usd == 0 and "UET_RESULT_FILE" in shell.assumptions[0]
    paid = forecast_step(plan(tool="shell"), PACKAGED, read, [obs(0.02, tool="shell", model=None)])
    assert paid.attempt_usd == (0.02, 0.02)


def test_percentile_and_total() -> None:
    assert percentile([5, 1, 3], HIGH_PERCENTILE) == 5
    assert percentile(list(range(1, 101)), 90) == 90
    a = forecast_step(plan(), PACKAGED, read)
    assert total([a, a]) == pytest.approx((2 * a.low_usd, 2 * a.high_usd))


def test_price_layers_router_over_litellm_over_the_packaged_table() -> None:
    fake_litellm = litellm_table_from(
        {
            "gpt-4o": {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6},
            "text-embedding-3": {"input_cost_per_token": 1e-7, "mode": "embedding"},
            "sample_spec": {"input_cost_per_token": 0, "output_cost_per_token": 0},
        },
        "litellm 9.9",
    )
    override = PriceTable({"gpt-4o": ModelPrice(9, 9, "router_config.json")}, "x")
    layered = LayeredPrices((fake_litellm, default_price_table()))
    price = layered.lookup("openai/gpt-4o")
    assert price is not None and price.input_per_mtok == pytest.approx(1)
    assert price.source == "litellm 9.9 price map"
    assert fake_litellm.lookup("text-embedding-3") is None
    assert layered.lookup("claude-sonnet-4-5") == default_price_table().lookup("claude-sonnet-4-5")
    top = LayeredPrices((override, fake_litellm)).lookup("gpt-4o")
    assert top is not None and top.source == "router_config.json prices"


@pytest.mark.skipif(importlib.util.find_spec("litellm") is None, reason="litellm not installed")
def test_litellm_price_map_is_used_when_installed() -> None:
    price = forecast_prices().lookup("gpt-4o")
    assert price is not None and price.source.startswith("litellm ")
    assert forecast_prices(use_litellm=False).lookup("gpt-4o") == default_price_table().lookup(
        "gpt-4o"
    )


def test_token_counting_never_downloads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    def no_network(*args: object) -> None:
        raise AssertionError("token counting tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "empty"))
    assert bytes_counter().count("x" * 400) == 100
    assert token_counter("gpt-4o", allow_tokenizer=False).name.endswith("bytes/token")
    # a file of the right name but the wrong content is not trusted (tiktoken would
    # delete it and download the encoding again)
    import hashlib

    url = "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken"
    (tmp_path / hashlib.sha1(url.encode()).hexdigest()).write_text("not an encoding")
    assert cached_encoding_dir("o200k_base", [str(tmp_path)]) is None
    assert cached_encoding_dir("o200k_base", [str(tmp_path / "empty")]) is None
    counter = token_counter("gpt-4o")  # whatever is on this machine, offline
    assert counter.count("hello world") > 0
