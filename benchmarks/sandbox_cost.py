"""What the OS sandbox costs per step.

    python benchmarks/sandbox_cost.py [--starts 40] [--files 500] [--steps 8] [--repeat 3]

1. Starting a process: `true` plain, inside bubblewrap and under Landlock, as uet wraps a
   tool (the attempt's binds, a pid namespace for bwrap), median milliseconds.
2. `uet run` of fake-aider isolated steps in a git repository with `sandbox: none`,
   `bwrap` and `landlock`: wall seconds (median of the repeats) and the cost per step.
Levels this machine cannot provide are reported as such.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from worktree_cost import FAKE_TOOLS, make_repo

from uet_doit.tools.sandbox import (
    attempt_spec,
    bwrap_problem,
    landlock_problem,
)


def start_ms(level: str | None, starts: int) -> float:
    """Median milliseconds to start and end `true` under `level` (None: no sandbox)."""
    with tempfile.TemporaryDirectory(prefix="uet-sbx-") as tmp:
        root = Path(tmp)
        own = [root / "worktree", root / "scratch", root / "scratch" / "tmp"]
        argv = ["true"]
        if level is not None:
            argv = attempt_spec(level, [([root], "ro"), (own, "own")]).wrap(argv)
        times = []
        for _ in range(starts):
            started = time.perf_counter()
            subprocess.run(argv, check=True)
            times.append((time.perf_counter() - started) * 1000)
        return statistics.median(times)


def run_seconds(level: str, files: int, steps: int) -> float:
    with tempfile.TemporaryDirectory(prefix="uet-sbx-run-") as tmp:
        root = Path(tmp) / "project"
        root.mkdir()
        make_repo(root, files, steps, "worktree")
        text = (root / "bundle.yaml").read_text(encoding="utf-8")
        (root / "bundle.yaml").write_text(f"sandbox: {level}\n{text}", encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FAKE_", "UET_"))}
        env["PATH"] = f"{FAKE_TOOLS}{os.pathsep}{env['PATH']}"
        argv = [sys.executable, "-m", "uet_doit", "run", "bundle.yaml", "--reporter", "plain"]
        started = time.perf_counter()
        proc = subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True, check=False)
        took = time.perf_counter() - started
        if proc.returncode != 0:
            sys.exit(f"uet run failed (sandbox {level}):\n{proc.stdout}\n{proc.stderr}")
        return took


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=40)
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    problems = {"bwrap": bwrap_problem(), "landlock": landlock_problem()}
    levels = [name for name, problem in problems.items() if problem is None]
    for name, problem in problems.items():
        if problem:
            print(f"{name}: not measured ({problem})")
    plain = start_ms(None, args.starts)
    print(f"start and end `true`, median of {args.starts}:")
    print(f"  no sandbox  {plain:7.1f} ms")
    for level in levels:
        took = start_ms(level, args.starts)
        print(f"  {level:<10}  {took:7.1f} ms  (+{took - plain:.1f} ms)")
    print(f"`uet run`, {args.steps} isolated fake-aider steps, {args.files} files, -n 1:")
    base = statistics.median(
        run_seconds("none", args.files, args.steps) for _ in range(args.repeat)
    )
    print(f"  sandbox none  {base:6.2f} s")
    for level in levels:
        took = statistics.median(
            run_seconds(level, args.files, args.steps) for _ in range(args.repeat)
        )
        per_step = (took - base) / args.steps * 1000
        print(f"  sandbox {level:<8} {took:6.2f} s  ({per_step:+.0f} ms per step)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
