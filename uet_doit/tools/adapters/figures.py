"""The figures in a tool's JSON (tokens, tool-call counts, dollars), read without trusting
their type: `"lots"`, `1e999`, a list or a negative count is unknown (None), never an
exception that would turn a finished attempt into an adapter crash."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


def count(value: Any) -> int | None:
    """A token or call count: a finite, non-negative number (floats are truncated)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return int(value) if value >= 0 else None


def dollars(value: Any) -> float | None:
    """A reported cost, passed on as the number it is (the cost checks reject negative or
    infinite ones, and say so); anything that is not a number is unknown."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def mapping(value: Any) -> Mapping[str, Any]:
    """An object of the JSON, or an empty one when it is something else."""
    return value if isinstance(value, dict) else {}


def total(*values: Any) -> int | None:
    """The sum of counts, unknown when any of them is (a missing one, None, counts 0)."""
    found = [count(v) if v is not None else 0 for v in values]
    return None if None in found else sum(v for v in found if v is not None)
