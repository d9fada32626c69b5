"""What `uet run --executor dask` costs against local runs, on this machine.

Two figures:
- per-step overhead: trivial shell steps (`touch`) run one at a time, locally and on a local
  Dask cluster of one worker (with the shared filesystem, and with --no-shared-fs, where
  each attempt snapshots the project with git and the worker sends back a patch). The
  marginal time per step comes from two bundle sizes
  ((T(big) - T(small)) / (big - small)), so start-up (Python, doit, the cluster) cancels
  out; it is reported apart as the fixed cost.
- makespan: 32 x `sleep 0.5` with -n 8 on 8 Dask workers; ideal 32 x 0.5 / 8 = 2 s; target
  <= 1.15x ideal. Read from file mtimes (first step start to last step end), as
  benchmarks/run.py does, so process start-up is not counted.

Every run is a fresh `python -m uet_doit run` in a temp dir.

    python benchmarks/dask_overhead.py            # sizes 50 and 250, 3 repetitions
    python benchmarks/dask_overhead.py --quick    # sizes 20 and 60, 1 repetition
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MAKESPAN_STEPS, MAKESPAN_SLEEP, MAKESPAN_WORKERS = 32, 0.5, 8
MAKESPAN_TARGET = 1.15


def fan_bundle(n: int) -> dict[str, object]:
    steps = [
        {
            "step_id": f"s{i:05d}",
            "tool_profile_id": "shell",
            "command": ["touch", f"out/s{i:05d}"],
            "context": {"create_files": [f"out/s{i:05d}"]},
        }
        for i in range(n)
    ]
    return {"bundle_id": "bench", "workstreams": [{"ws_id": "W", "steps": steps}]}


def sleep_bundle(n: int, seconds: float) -> dict[str, object]:
    steps = [
        {
            "step_id": f"z{i:03d}",
            "tool_profile_id": "shell",
            "command": f"touch out/z{i:03d}.start; sleep {seconds}; touch out/z{i:03d}.end",
        }
        for i in range(n)
    ]
    return {"bundle_id": "bench", "workstreams": [{"ws_id": "W", "steps": steps}]}


def run_uet(bundle: dict[str, object], root: Path, *args: str) -> float:
    """Wall time of one `uet run` in `root`, a fresh project."""
    (root / "out").mkdir()
    (root / "bundle.json").write_text(json.dumps(bundle))
    if "--no-shared-fs" in args:  # the project travels as git: it must be a repository
        ident = ["-c", "user.name=bench", "-c", "user.email=bench@localhost"]
        for git_args in (["init", "-q"], ["add", "-A"], [*ident, "commit", "-q", "-m", "start"]):
            subprocess.run(["git", *git_args], cwd=root, check=True, capture_output=True)
    argv = [sys.executable, "-m", "uet_doit", "run", "bundle.json", "--reporter", "plain", *args]
    # the normal bytecode cache: a fresh one would make every Dask worker compile
    # dask and distributed again, which no installed cluster does
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=root, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"uet run {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}")
    return wall


def timed(bundle: dict[str, object], *args: str) -> float:
    with tempfile.TemporaryDirectory(prefix="uet-dask-bench-") as folder:
        return run_uet(bundle, Path(folder), *args)


def per_step(small: int, big: int, reps: int, *args: str) -> tuple[float, float]:
    """(marginal seconds per step, fixed seconds) for `uet run ARGS`, medians over reps."""
    t_small = statistics.median(timed(fan_bundle(small), *args) for _ in range(reps))
    t_big = statistics.median(timed(fan_bundle(big), *args) for _ in range(reps))
    slope = (t_big - t_small) / (big - small)
    return slope, t_small - slope * small


def makespan(*args: str) -> float:
    with tempfile.TemporaryDirectory(prefix="uet-dask-bench-") as folder:
        root = Path(folder)
        run_uet(sleep_bundle(MAKESPAN_STEPS, MAKESPAN_SLEEP), root, *args)
        starts = [p.stat().st_mtime for p in (root / "out").glob("*.start")]
        ends = [p.stat().st_mtime for p in (root / "out").glob("*.end")]
    assert len(starts) == len(ends) == MAKESPAN_STEPS
    return max(ends) - min(starts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one repetition")
    parser.add_argument("--sizes", type=int, nargs=2, metavar=("SMALL", "BIG"))
    parser.add_argument("--reps", type=int)
    args = parser.parse_args(argv)
    small, big = args.sizes or ((20, 60) if args.quick else (50, 250))
    reps = args.reps or (1 if args.quick else 3)
    load = os.getloadavg()[0]
    print(f"uet --executor dask vs local; {os.cpu_count()} cpus, load {load:.2f}; ", end="")
    print(f"fan sizes {small}/{big}, {reps} rep(s)")

    local = per_step(small, big, reps)
    dask = per_step(small, big, reps, "--executor", "dask", "--workers", "1")
    remote = per_step(small, big, reps, "--executor", "dask", "--workers", "1", "--no-shared-fs")
    print(f"{'':28}{'local':>10}{'dask':>10}{'diff':>10}{'dask, no shared fs':>20}")
    print(
        f"{'per step (ms)':28}{local[0] * 1e3:10.2f}{dask[0] * 1e3:10.2f}"
        f"{(dask[0] - local[0]) * 1e3:10.2f}{remote[0] * 1e3:20.2f}"
    )
    print(
        f"{'fixed start-up (s)':28}{local[1]:10.2f}{dask[1]:10.2f}{dask[1] - local[1]:10.2f}"
        f"{remote[1]:20.2f}"
    )

    ideal = MAKESPAN_STEPS * MAKESPAN_SLEEP / MAKESPAN_WORKERS
    jobs = ("-n", str(MAKESPAN_WORKERS))
    local_span = makespan(*jobs)
    dask_span = makespan(*jobs, "--executor", "dask", "--workers", str(MAKESPAN_WORKERS))
    ratio = dask_span / ideal
    verdict = "PASS" if ratio <= MAKESPAN_TARGET else "FAIL"
    print(
        f"makespan {MAKESPAN_STEPS} x sleep {MAKESPAN_SLEEP} -n {MAKESPAN_WORKERS}: "
        f"ideal {ideal:.2f}s, local {local_span:.2f}s ({local_span / ideal:.3f}x), "
        f"dask {MAKESPAN_WORKERS} workers {dask_span:.2f}s ({ratio:.3f}x; "
        f"target <= {MAKESPAN_TARGET}x) {verdict}"
    )
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
