"""Hang trials: a parallel `uet run` stopped by SIGINT to its process group (while its tools
run, or at any instant of its start), or losing the process that starts its tools (the
reaper, killed with -9), must end within seconds and leave no tool running.
`python benchmarks/interrupt_trials.py --trials 20`."""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

DEADLINE_S = 15.0


def write_bundle(root: Path, steps: int) -> None:
    items = [
        {
            "step_id": f"s{i}",
            "command": ["sh", "-c", f"sleep 30 & echo $! > bg{i}.pid; wait"],
            "resilience": {"max_retries": 1, "initial_delay": 0, "max_delay": 0, "jitter": 0},
        }
        for i in range(steps)
    ]
    bundle = {"bundle_id": "hang", "workstreams": [{"ws_id": "W", "steps": items}]}
    (root / "bundle.yaml").write_text(yaml.safe_dump(bundle))


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def left_running(root: Path) -> list[int]:
    pids = []
    for path in root.glob("bg*.pid"):
        try:
            pids.append(int(path.read_text().strip()))
        except ValueError:
            continue
    time.sleep(0.3)
    return [p for p in pids if alive(p)]


def reaper_of(runner: int) -> int | None:
    """The reaper the runner started (its child running uet_doit/tools/reaper.py)."""
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[-1].split()[1])
        if ppid == runner and b"uet_doit/tools/reaper.py" in cmd:
            return int(entry.name)
    return None


def trial(kind: str, wait: float) -> tuple[bool, str]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_bundle(root, 4)
        env = {k: v for k, v in os.environ.items() if not k.startswith("UET_")}
        proc = subprocess.Popen(
            [sys.executable, "-m", "uet_doit", "run", "bundle.yaml", "-n", "4", "-c"],
            cwd=root,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
        if kind != "sigint-early":  # else: at any instant of the start, tools half started
            for _ in range(400):  # the tools run (a slow start must not look like a hang)
                if len(list(root.glob("bg*.pid"))) == 4:
                    break
                time.sleep(0.05)
        time.sleep(wait)
        started = time.monotonic()
        if kind in ("sigint", "sigint-early"):
            os.killpg(proc.pid, signal.SIGINT)
        else:
            reaper = reaper_of(proc.pid)
            if reaper is None:
                os.killpg(proc.pid, signal.SIGKILL)
                return False, "no reaper found"
            os.kill(reaper, signal.SIGKILL)
            time.sleep(1.0)
            os.killpg(proc.pid, signal.SIGINT)  # the lost attempts were retried: stop the run
        try:
            code = proc.wait(timeout=DEADLINE_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            return False, "HUNG"
        took = time.monotonic() - started
        left = left_running(root)
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        ok = code == 130 and not left
        return ok, f"exit {code} after {took:.1f}s, {len(left)} tool(s) left"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    bad = 0
    kinds = {"sigint": (0.0, 0.5), "sigint-early": (0.2, 1.2), "reaper-kill": (0.0, 0.5)}
    for kind, (low, high) in kinds.items():
        for n in range(args.trials):
            ok, what = trial(kind, rng.uniform(low, high))
            bad += not ok
            print(f"{kind:<12} trial {n:2d}: {'ok ' if ok else 'BAD'} {what}")
    print(f"{len(kinds) * args.trials - bad} passed, {bad} failed")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
