"""benchmarks/run.py at a tiny size: the table gets rows and the JSON is written.

Not a performance check: it only keeps the benchmark script runnable as uet-doit changes.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest

from support import load_benchmark


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_benchmark("run")


def test_workloads_mirror_each_other(bench: ModuleType) -> None:
    """The bundle and the raw doit tasks describe the same graph."""
    w = bench.make_workload("layered", 6, layers=3)
    bundle = bench.bundle_dict(w)
    tasks = {t["name"]: t for t in bench.raw_tasks(w)}
    assert [ws["ws_id"] for ws in bundle["workstreams"]] == ["ws0", "ws1", "ws2"]
    assert tasks["s00002"]["task_dep"] == ["bench:ws0"]
    assert tasks["ws1"]["task_dep"] == ["bench:s00002", "bench:s00003"]
    chain = bench.raw_tasks(bench.make_workload("chain", 3))
    assert chain[2]["file_dep"] == ["out/s00001"]
    assert chain[2]["task_dep"] == ["bench:s00001"]


@pytest.mark.slow
def test_tiny_run_fills_table_and_json(bench: ModuleType, tmp_path: Path) -> None:
    cfg = bench.Config(sizes=[5], chain_sizes=[5], shapes=["fan"], groups=["run"], reps=1)
    lines: list[str] = []
    suite = bench.run_suite(cfg, log=lines.append)
    names = {r.name for r in suite.rows}
    assert {"first run fan", "no-op re-run fan", "list fan", "validate"} <= names
    first = next(r for r in suite.rows if r.name == "first run fan")
    assert first.raw is not None and first.uet is not None, suite.raw
    assert len(lines) == len(suite.rows) + 1  # header + one line per row
    path = bench.write_json(suite, tmp_path)
    data = json.loads(path.read_text())
    assert data["rows"] and data["machine"]["nproc"]
    assert data["measurements"]["fan-5-uet"]["first"]["ok"]


@pytest.mark.slow
def test_tiny_overhead_group_fills_its_target_rows(bench: ModuleType) -> None:
    """The overhead group measures issue 24's four targets as interleaved pairs."""
    cfg = bench.Config(sizes=[5], chain_sizes=[5], groups=["overhead"], overhead_sizes=(3, 4))
    cfg.overhead_reps = 2
    suite = bench.run_suite(cfg, log=lambda _line: None)
    targets = {(r.name, r.size): r for r in suite.rows if r.passed is not None}
    assert [size for _name, size in targets] == [3, 3, 4, 4]
    assert all(r.raw is not None and r.uet is not None and r.ratio for r in targets.values())
    assert len(suite.raw["overhead_load"]) == 2
