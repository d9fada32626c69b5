"""What the cost forecast costs: a dry run's forecast of N AI steps, and the reservation
estimate every attempt under a budget now makes, with and without ledger history.

    python benchmarks/forecast.py                # 37 (the K+ bundle's size), 1k and 5k steps
    python benchmarks/forecast.py --sizes 100 --history 0 2000

Prints one row per measurement (best of --reps). Runs in a temp dir; reaches no network.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def best(fn: Callable[[], object], reps: int) -> float:
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def write_project(root: Path, size: int) -> Path:
    (root / "docs").mkdir(parents=True, exist_ok=True)
    for i in range(20):
        (root / "docs" / f"in{i}.md").write_text("Some context line for the model.\n" * 200)
    steps = [
        {
            "step_id": f"s{i:05d}",
            "tool_profile_id": "aider",
            "context": {
                "files": [f"docs/in{i % 20}.md"],
                "create_files": [f"out/s{i:05d}.md"],
                "instruction": f"Write section {i}: what it does, why, and what can go wrong.",
            },
        }
        for i in range(size)
    ]
    path = root / "bundle.json"
    path.write_text(
        json.dumps(
            {
                "bundle_id": "bench",
                "max_cost_usd": 100,
                "workstreams": [{"ws_id": "WS", "max_cost_usd": 50, "steps": steps}],
            }
        )
    )
    return path


def add_history(root: Path, attempts: int) -> None:
    """Finished attempts of aider/gpt-4o, recorded through the store as runs record them."""
    from uet_doit.state.records import AttemptOutcome
    from uet_doit.state.store import RunStore

    store = RunStore(root)
    store.start_run("bench-hist", "bench")
    for i in range(attempts):
        attempt_id = store.begin_attempt(
            "bench-hist", "bench", "WS", f"s{i:05d}", "aider", 1, session="bench"
        )
        store.finish_attempt(
            attempt_id,
            AttemptOutcome.SUCCEEDED,
            cost_usd=0.005 + (i % 7) * 0.001,
            tokens_in=2300,
            tokens_out=150,
            model="gpt-4o",
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[37, 1000, 5000])
    parser.add_argument("--history", type=int, nargs="+", default=[0, 2000])
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()

    from uet_doit.tools.tokens import token_counter

    print(f"token counter here: {token_counter('gpt-4o').name}")
    print(f"{'measurement':<52} {'size':>6} {'history':>8} {'time':>10}")
    for history in args.history:
        for size in args.sizes:
            with tempfile.TemporaryDirectory() as tmp:
                measure(Path(tmp), size, history, args.reps)


def measure(root: Path, size: int, history: int, reps: int) -> None:
    from uet_doit.bundle.loader import load_bundle
    from uet_doit.run.budget import CostLedger
    from uet_doit.run.doit.compiler import build_spec
    from uet_doit.run.forecast.inputs import bundle_forecasts
    from uet_doit.state.store import RunStore
    from uet_doit.tools.routing import default_known_tools

    os.chdir(root)
    path = write_project(root, size)
    if history:
        add_history(root, history)
    bundle = load_bundle(path, root, known_tools=default_known_tools(), remember=False)
    store = RunStore(root)
    for tokenizer in (True, False):
        seconds = best(
            lambda t=tokenizer: bundle_forecasts(bundle, root, store, use_tokenizer=t), reps
        )
        what = "forecast of every step (" + ("tokenizer" if tokenizer else "bytes/4") + ")"
        print(f"{what:<52} {size:>6} {history:>8} {seconds * 1000:>8.1f}ms")
    ws, step = bundle.steps()[0]
    spec = build_spec(bundle, ws, step, root)
    ledger = CostLedger(store)
    calls = 200
    seconds = best(lambda: [ledger.estimate(None, "aider", spec) for _ in range(calls)], reps)
    print(
        f"{'reservation estimate of one attempt (per call)':<52} {size:>6} "
        f"{history:>8} {seconds / calls * 1000:>8.2f}ms"
    )


if __name__ == "__main__":
    main()
