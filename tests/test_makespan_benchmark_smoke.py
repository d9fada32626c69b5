"""benchmarks/makespan.py without running it: its workloads and lower bounds are what the
benchmarks/README.md says (the 4-free + 4-chain example is bounded by 4 s at -n 2)."""

from __future__ import annotations

from types import ModuleType

import pytest

from support import load_benchmark


@pytest.fixture(scope="module")
def makespan() -> ModuleType:
    return load_benchmark("makespan")


def test_issue_example_is_bounded_by_its_chain(makespan: ModuleType) -> None:
    work = makespan.issue_example()
    assert work.jobs == 2 and work.lower_bound() == 4.0
    assert list(work.durations)[:4] == ["f1", "f2", "f3", "f4"]  # listed before the chain


def test_random_dags_are_reproducible_and_acyclic(makespan: ModuleType) -> None:
    a, b = makespan.random_dag(1), makespan.random_dag(1)
    assert a == b
    made = sorted(a.durations)
    for step, deps in a.deps.items():
        assert all(made.index(d) < made.index(step) for d in deps)
    assert a.lower_bound() >= sum(a.durations.values()) / a.jobs
