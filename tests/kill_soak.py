"""Kill -9 soak: run a 30-step bundle, kill the runner at random instants, resume, and check
every step's side effect happened exactly once. `python tests/kill_soak.py --rounds 20`."""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import yaml

STEPS = 30


def write_bundle(root: Path, steps: int = STEPS) -> None:
    items = []
    for i in range(steps):
        step = {
            "step_id": f"s{i:02d}",
            "tool_profile_id": "shell",
            # the side effect is the last thing the step does, like a tool writing its result
            "command": ["sh", "-c", "sleep 0.08; echo $UET_STEP_ID >> effects.log"],
        }
        if i % 5:
            step["depends_on"] = [f"s{i - 1:02d}"]
        items.append(step)
    bundle = {"bundle_id": "soak", "workstreams": [{"ws_id": "W", "steps": items}]}
    (root / "bundle.yaml").write_text(yaml.safe_dump(bundle))


def uet(root: Path, ptype: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.pop("UET_RUN_ID", None)
    return subprocess.Popen(
        [sys.executable, "-m", "uet_doit", "run", "bundle.yaml", "-n", "4", "-P", ptype],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def kill_and_resume(root: Path, ptype: str, kill_after: float) -> Counter[str]:
    """Start, kill -9 the runner after `kill_after` s, then run again to the end."""
    write_bundle(root)
    first = uet(root, ptype)
    time.sleep(kill_after)
    first.send_signal(signal.SIGKILL)
    first.wait()
    env = dict(os.environ)
    env.pop("UET_RUN_ID", None)
    second = subprocess.run(
        [sys.executable, "-m", "uet_doit", "run", "bundle.yaml", "-n", "4", "-P", ptype],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if second.returncode != 0:
        raise AssertionError(f"the resumed run failed:\n{second.stdout}\n{second.stderr}")

    return Counter((root / "effects.log").read_text().split())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    bad = 0
    for n in range(args.rounds):
        ptype = ("process", "thread")[n % 2]
        kill_after = rng.uniform(0.3, 1.2)
        with tempfile.TemporaryDirectory() as tmp:
            counts = kill_and_resume(Path(tmp), ptype, kill_after)
        wrong = {k: v for k, v in counts.items() if v != 1}
        missing = STEPS - len(counts)
        ok = not wrong and not missing
        bad += not ok
        print(
            f"round {n}: -P {ptype:<7} kill at {kill_after:.2f}s: "
            f"{'ok' if ok else f'twice={wrong} missing={missing}'}"
        )
    print(f"{args.rounds - bad} passed, {bad} failed")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
