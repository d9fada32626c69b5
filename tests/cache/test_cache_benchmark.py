"""benchmarks/cache_cost.py at a tiny size: keeps the script runnable (not a speed check)."""

from __future__ import annotations

import importlib.util
import sys

from support import REPO


def test_cache_benchmark_measures_each_phase() -> None:
    path = REPO / "benchmarks" / "cache_cost.py"
    spec = importlib.util.spec_from_file_location("uet_cache_cost", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    costs = module.per_step_costs(3, 64)
    assert set(costs) == {"lookup (miss)", "store", "hit"}
    assert all(value > 0 for value in costs.values())
