"""Many runs in one process through `uet_doit.run_bundle` (issue 24, item 4): the time per
run, and what the runs left in the process (descriptors, threads, sys.stdout).

Each run is a fresh project of --steps shell steps run with --jobs threads; a first run
warms imports and caches and is not counted. Descriptors are counted before the collector
runs (what a long-lived process holds between collections) and after `gc.collect()`.

    python benchmarks/many_runs.py                 # 20 runs of 3 steps, -n 2
    python benchmarks/many_runs.py --runs 50 --steps 5 --jobs 4
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

import uet_doit


def project(root: Path, name: str, steps: int) -> Path:
    root.mkdir(parents=True)
    listed = [
        {
            "step_id": f"s{i}",
            "tool_profile_id": "shell",
            "command": f"echo {i} > out{i}.txt",
            "create_files": [f"out{i}.txt"],
        }
        for i in range(steps)
    ]
    bundle = root / "bundle.yaml"
    data = {"bundle_id": name, "workstreams": [{"ws_id": "W", "steps": listed}]}
    bundle.write_text(yaml.safe_dump(data))
    return bundle


def descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    report = sys.__stderr__ or sys.stderr  # not sys.stdout: a run may leave it swapped
    with tempfile.TemporaryDirectory(prefix="uet-many-runs-") as tmp:
        base = Path(tmp)
        uet_doit.run_bundle(project(base / "warm", "warm", 1), base / "warm")
        fds, threads, stdout = descriptors(), threading.active_count(), sys.stdout
        start = time.perf_counter()
        for n in range(args.runs):
            root = base / f"p{n}"
            outcome = uet_doit.run_bundle(project(root, f"p{n}", args.steps), root, jobs=args.jobs)
            if not outcome.ok:
                report.write(f"run {n} failed: {outcome.reason}\n")
                return 1
        took = time.perf_counter() - start
        before_gc = descriptors()
        gc.collect()
        report.write(
            f"{args.runs} runs of {args.steps} steps (-n {args.jobs}): "
            f"{took / args.runs * 1000:.0f} ms/run\n"
            f"descriptors: {fds} before, {before_gc} after, {descriptors()} after gc.collect()\n"
            f"threads: {threads} before, {threading.active_count()} after\n"
            f"sys.stdout replaced: {sys.stdout is not stdout}\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
