"""What reviews add to a run: `uet run` of W workstreams (one shell step each) with C sentence
criteria per workstream, judged by the fake claude (uet_doit/fake_tools), then the
same run again with nothing changed (every verdict kept: no reviewer call), then without a
reviewer (sentences "to confirm"), first and again, for comparison.

    python benchmarks/review_cost.py                   # 4 workstreams x 5 criteria
    python benchmarks/review_cost.py --workstreams 10 --criteria 3 --reps 3
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

import yaml

FAKES = Path(__file__).resolve().parent.parent / "uet_doit" / "fake_tools"


def bundle(workstreams: int, criteria: int, review: bool) -> dict[str, object]:
    data: dict[str, object] = {
        "bundle_id": "bench-review",
        "workstreams": [
            {
                "ws_id": f"W{w}",
                "steps": [
                    {
                        "step_id": f"s{w}",
                        "tool": "shell",
                        "command": f"mkdir -p out; echo 'part {w}' > out/{w}.md",
                        "create_files": [f"out/{w}.md"],
                    }
                ],
                "completion_criteria": [f"Part {w} states claim {c}" for c in range(criteria)],
            }
            for w in range(workstreams)
        ],
    }
    if review:
        data["review"] = {"tool": "claude"}
    return data


def timed_run(root: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "uet_doit", "run", "bundle.yaml", "--reporter", "plain"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    took = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"uet run failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return took


def calls(log: Path) -> int:
    if not log.exists():
        return 0
    return sum(1 for line in log.read_text().splitlines() if not json.loads(line).get("version"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workstreams", type=int, default=4)
    parser.add_argument("--criteria", type=int, default=5)
    parser.add_argument("--reps", type=int, default=1)
    args = parser.parse_args()
    rows: dict[str, list[float]] = {"first run, reviewed": [], "re-run, verdicts kept": []}
    rows["run without a reviewer"] = []
    rows["re-run without a reviewer"] = []
    reviews = 0
    for _ in range(args.reps):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            log = root / "calls.jsonl"
            env = {**os.environ, "PATH": f"{FAKES}{os.pathsep}{os.environ['PATH']}"}
            env |= {"FAKE_TOOL_LOG": str(log), "FAKE_STATE_DIR": str(root / "fake-state")}
            plan = bundle(args.workstreams, args.criteria, review=True)
            (root / "bundle.yaml").write_text(yaml.safe_dump(plan))
            rows["first run, reviewed"].append(timed_run(root, env))
            reviews = calls(log)
            rows["re-run, verdicts kept"].append(timed_run(root, env))
            if calls(log) != reviews:
                sys.exit("the re-run called the reviewer")
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            plain = bundle(args.workstreams, args.criteria, review=False)
            (root / "bundle.yaml").write_text(yaml.safe_dump(plain))
            rows["run without a reviewer"].append(timed_run(root, dict(os.environ)))
            rows["re-run without a reviewer"].append(timed_run(root, dict(os.environ)))
    n = args.workstreams * args.criteria
    print(f"{args.workstreams} workstream(s) x {args.criteria} criteria = {n} reviews")
    print(f"reviewer calls: first run {reviews}, re-run 0")
    for name, values in rows.items():
        print(f"  {name:<28} {statistics.median(values):6.2f} s (median of {len(values)})")
    extra = statistics.median(rows["first run, reviewed"]) - statistics.median(
        rows["run without a reviewer"]
    )
    print(f"  per review (fake claude)     {extra / max(n, 1) * 1000:6.0f} ms")


if __name__ == "__main__":
    main()
