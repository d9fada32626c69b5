"""benchmarks/cache_cost.py at a tiny size: keeps the script runnable (not a speed check)."""

from __future__ import annotations

from support import load_benchmark


def test_cache_benchmark_measures_each_phase() -> None:
    costs = load_benchmark("cache_cost").per_step_costs(3, 64)
    assert set(costs) == {"lookup (miss)", "store", "hit"}
    assert all(value > 0 for value in costs.values())
