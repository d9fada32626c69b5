"""benchmarks/dask_overhead.py at a tiny size: it still runs and its bundles are valid.

Not a performance check (figures are printed by the script, never asserted in tests).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from support import REPO, Project

pytest.importorskip("distributed")

SCRIPT = REPO / "benchmarks" / "dask_overhead.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("uet_dask_overhead", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_generated_bundles_are_valid(bench: ModuleType, project: Project) -> None:
    project.write("fan.json", json.dumps(bench.fan_bundle(3)))
    project.write("sleep.json", json.dumps(bench.sleep_bundle(4, 0.01)))
    result = project.uet("validate", "fan.json", "sleep.json")
    assert result.code == 0, result.out + result.err
    assert "3 steps" in result.out and "4 steps" in result.out


@pytest.mark.slow
def test_a_dask_run_of_the_benchmark_does_the_work(bench: ModuleType, tmp_path: Path) -> None:
    wall = bench.run_uet(bench.fan_bundle(2), tmp_path, "--executor", "dask", "--workers", "1")
    assert wall > 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["s00000", "s00001"]
