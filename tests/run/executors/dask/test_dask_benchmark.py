"""benchmarks/dask_overhead.py at a tiny size: it still runs and its bundles are valid.

Not a performance check (figures are printed by the script, never asserted in tests).
"""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest

from support import Project, load_benchmark

pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_benchmark("dask_overhead")


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
