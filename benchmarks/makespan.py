"""Makespan of uet's ranked dispatch against doit's listing order and the lower bound.

Each workload is a DAG of `sleep D` shell steps with known durations. A first run teaches the
run store the durations (as a project's history would); then the outputs are removed and the
same bundle runs again, once with uet's dispatcher (longest remaining path first) and once
with doit's own (listing order). The makespan is read from the run store (first attempt
start to last attempt end), so start-up is not counted. The lower bound is
max(critical path, total work / N).

    python benchmarks/makespan.py            # the issue's example and 3 random DAGs
    python benchmarks/makespan.py --quick    # the issue's example only
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: runs `uet` in a child; argv[1] "fifo" swaps doit's own dispatcher back in
_CHILD = r"""
import sys
if sys.argv[1] == "fifo":
    import doit.cmd_run, doit.control
    import uet_doit.run.doit.dispatch as d
    d.install = lambda: setattr(doit.cmd_run, "TaskControl", doit.control.TaskControl)
from uet_doit.cli.main import main
sys.exit(main(sys.argv[2:]))
"""


@dataclass(frozen=True)
class Workload:
    name: str
    durations: dict[str, float]  # step_id -> seconds, in listing order
    deps: dict[str, list[str]]
    jobs: int

    def bundle(self) -> dict[str, Any]:
        steps = [
            {
                "step_id": s,
                "command": f"sleep {d} && touch out/{s}",
                "create_files": [f"out/{s}"],
                "depends_on": self.deps.get(s, []),
            }
            for s, d in self.durations.items()
        ]
        return {"bundle_id": "mk", "workstreams": [{"ws_id": "W", "steps": steps}]}

    def lower_bound(self) -> float:
        finish: dict[str, float] = {}

        def done(step: str) -> float:
            if step not in finish:
                start = max((done(d) for d in self.deps.get(step, [])), default=0.0)
                finish[step] = start + self.durations[step]
            return finish[step]

        critical = max(done(s) for s in self.durations)
        return max(critical, sum(self.durations.values()) / self.jobs)


def issue_example() -> Workload:
    """4 free 1-second steps listed before a 4-step chain, -n 2 (issue 26): 6.2 s -> 4 s."""
    durations = {f"f{i}": 1.0 for i in range(1, 5)} | {f"c{i}": 1.0 for i in range(1, 5)}
    deps = {f"c{i}": [f"c{i - 1}"] for i in range(2, 5)}
    return Workload("4 free + 4-chain", durations, deps, 2)


def random_dag(seed: int, size: int = 12, jobs: int = 3) -> Workload:
    """Steps listed in a shuffled order; each depends on up to 2 steps made before it."""
    rng = random.Random(seed)
    made = [f"s{i:02d}" for i in range(size)]
    deps: dict[str, list[str]] = {}
    for index, step in enumerate(made):
        if index and rng.random() < 0.7:
            deps[step] = sorted(rng.sample(made[:index], k=min(index, rng.randint(1, 2))))
    durations = {s: round(rng.choice([0.2, 0.4, 0.8, 1.2]), 1) for s in made}
    listed = made[:]
    rng.shuffle(listed)
    return Workload(f"random DAG seed {seed}", {s: durations[s] for s in listed}, deps, jobs)


def uet(root: Path, mode: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, mode, *args],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"uet {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def makespan(root: Path, out: str) -> float:
    from uet_doit.state.store import RunStore

    run_id = out.split()[1]
    attempts = RunStore(root).attempts(run_id)
    return max(a.ended or 0.0 for a in attempts) - min(a.started for a in attempts)


def measure(work: Workload) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="uet-makespan-") as tmp:
        root = Path(tmp)
        (root / "out").mkdir()
        (root / "b.json").write_text(json.dumps(work.bundle()))
        jobs = ["-n", str(work.jobs)]
        uet(root, "ranked", "run", "b.json", *jobs)  # the history the next runs learn from
        result: dict[str, Any] = {"workload": work.name, "n": work.jobs}
        for mode in ("ranked", "fifo"):
            for f in (root / "out").iterdir():
                f.unlink()
            result[mode] = makespan(root, uet(root, mode, "run", "b.json", *jobs))
        result["bound"] = work.lower_bound()
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the issue's example only")
    args = parser.parse_args()
    works = [issue_example()]
    if not args.quick:
        works += [random_dag(seed) for seed in (1, 2, 3)]
    print(f"{'workload':<22} {'-n':>3} {'uet':>7} {'listing':>8} {'bound':>7} {'uet/bound':>10}")
    for work in works:
        r = measure(work)
        print(
            f"{r['workload']:<22} {r['n']:>3} {r['ranked']:>6.2f}s {r['fifo']:>7.2f}s "
            f"{r['bound']:>6.2f}s {r['ranked'] / r['bound']:>10.2f}"
        )


if __name__ == "__main__":
    main()
