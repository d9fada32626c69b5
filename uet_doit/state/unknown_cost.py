"""When an attempt's cost is unknown, and why: one rule for status, `uet cost`, reports,
commit trailers and budgets.

An attempt's cost is unknown when the tool used tokens uet cannot price (`unpriced`), when
it reported a cost uet refused (`rejected`: negative, NaN, infinite) or when an AI tool ran
and reported nothing (`unreported`: killed, timed out). Such a cost is never shown as $0;
budgets count it at what the attempt reserved (its forecast's high end, or the step's
estimate), recorded as the attempt's `charged_usd`.
"""

from __future__ import annotations

UNPRICED = "unpriced"
REJECTED = "rejected"
UNREPORTED = "unreported"
UNKNOWN_SOURCES = frozenset({UNPRICED, REJECTED, UNREPORTED})


def is_unknown(cost_usd: float | None, cost_source: str | None) -> bool:
    return cost_usd is None and cost_source in UNKNOWN_SOURCES


def unknown_reason(cost_source: str | None, model: str | None) -> str:
    """Why a cost is unknown, with what to do about it."""
    if cost_source == UNPRICED:
        name = repr(model) if model else "(the tool did not say which model)"
        return (
            f"no price for model {name}: add it under `prices` in router_config.json "
            "(`uet cost --prices` lists the known ones)"
        )
    if cost_source == REJECTED:
        return "the tool reported a negative, NaN or infinite cost (rejected)"
    if cost_source == UNREPORTED:
        return "the tool reported neither cost nor tokens (stopped before it said)"
    return "unknown"


def cost_with_unknown(known_usd: float, unknown_steps: int, digits: int = 4) -> str:
    """A total in words: `$0.1234`, or `$0.1234 + 2 steps of unknown cost`."""
    text = f"${known_usd:.{digits}f}"
    if unknown_steps:
        text += f" + {unknown_steps} step{'s' if unknown_steps != 1 else ''} of unknown cost"
    return text
