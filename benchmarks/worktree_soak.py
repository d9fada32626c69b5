"""Kill -9 soak of isolated steps: a 12-step `-n 4` worktree run in a git repository is
killed at a random instant, then run again until it finishes; every step must have landed
exactly once (one commit, its edit applied once) and no worktree or branch of ours left.

    python benchmarks/worktree_soak.py --rounds 20 [--steps 12] [--jobs 4] [--seed 1]

Prints one line per round and a summary; exits 1 if any round broke the rule.
"""

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
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
FAKE_TOOLS = REPO / "uet_doit" / "fake_tools"
GAP = 3  # lines between two steps' edits: their merges never touch


def _git(root: Path, *args: str) -> str:
    ident = ["-c", "user.name=Soak", "-c", "user.email=soak@localhost"]
    proc = subprocess.run(
        ["git", "-C", str(root), *ident, *args], capture_output=True, text=True, check=True
    )
    return proc.stdout


def make_repo(root: Path, steps: int) -> None:
    """A repository with one shared file; step i edits its own line of it, every fourth step
    also waits for the one before (so landings and dependencies interleave)."""
    lines = [f"line{i}: original\n" if i % GAP == 0 else "-\n" for i in range(steps * GAP)]
    (root / "shared.md").write_text("".join(lines), encoding="utf-8")
    items = []
    for i in range(steps):
        step = {
            "step_id": f"s{i:02d}",
            "tool_profile_id": "aider",
            "context": {"files": ["shared.md"], "instruction": f"edit line {i * GAP}"},
            "env": {
                "FAKE_REPLACE": f"line{i * GAP}: original=>line{i * GAP}: edited by s{i:02d}",
                "FAKE_AIDER_MODE": "slow",
                "FAKE_SLEEP": str(0.1 + (i % 4) * 0.1),
            },
        }
        if i % 4 == 3:
            step["depends_on"] = [f"s{i - 1:02d}"]
        items.append(step)
    bundle = {"bundle_id": "soak", "workstreams": [{"ws_id": "W", "steps": items}]}
    (root / "bundle.yaml").write_text(yaml.safe_dump(bundle), encoding="utf-8")
    _git(root, "init", "-q", "-b", "main")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "start")


def _env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FAKE_", "UET_RUN_ID"))}
    env["PATH"] = f"{FAKE_TOOLS}{os.pathsep}{env.get('PATH', '')}"
    env["FAKE_TOOL_LOG"] = str(calls_log(root))
    return env


def _uet(root: Path, jobs: int) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "uet_doit", "run", "bundle.yaml", "-n", str(jobs), "-c"]
    return subprocess.Popen(
        argv, cwd=root, env=_env(root), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


@dataclass
class Trial:
    kill_after: float
    runs: int = 0
    commits: Counter[str] = field(default_factory=Counter)
    edits: Counter[str] = field(default_factory=Counter)
    leftovers: list[str] = field(default_factory=list)
    tool_calls: int = 0  # more than the steps: attempts killed before their tool started
    errors: list[str] = field(default_factory=list)

    def problems(self, steps: int) -> list[str]:
        wanted = {f"s{i:02d}" for i in range(steps)}
        found = [f"{s}: {n} commits" for s, n in sorted(self.commits.items()) if n != 1]
        found += [f"{s}: no commit" for s in sorted(wanted - set(self.commits))]
        found += [f"{s}: edit applied {n} times" for s, n in sorted(self.edits.items()) if n != 1]
        found += [f"{s}: edit missing" for s in sorted(wanted - set(self.edits))]
        return found + self.leftovers + self.errors


def calls_log(root: Path) -> Path:
    """The fake tools' log: outside the project (the sandbox lets a tool write there)."""
    return root.with_name(root.name + "-tool-calls.jsonl")


def trial(root: Path, steps: int, jobs: int, kill_after: float, max_runs: int = 4) -> Trial:
    """Start, kill -9 the runner after `kill_after` s, then run again until it succeeds."""
    make_repo(root, steps)
    result = Trial(kill_after)
    first = _uet(root, jobs)
    time.sleep(kill_after)
    first.send_signal(signal.SIGKILL)
    first.wait()
    for _ in range(max_runs):
        result.runs += 1
        proc = _uet(root, jobs)
        _, err = proc.communicate(timeout=300)
        if proc.returncode == 0:
            break
    else:
        result.errors.append(f"no successful run after {max_runs} resumes: {err.decode()[-300:]}")
    log = _git(root, "log", "--format=%(trailers:key=Uet-Step,valueonly)", "main")
    result.commits = Counter(line.strip() for line in log.splitlines() if line.strip())
    text = (root / "shared.md").read_text(encoding="utf-8")
    result.edits = Counter(
        word.strip(": \n") for word in text.split("edited by ")[1:] for word in [word[:3]]
    )
    calls = calls_log(root)
    result.tool_calls = len(calls.read_text().splitlines()) if calls.exists() else 0
    worktrees = _git(root, "worktree", "list", "--porcelain").count("worktree ")
    if worktrees != 1:
        result.leftovers.append(f"{worktrees - 1} worktree(s) left")
    branches = _git(root, "branch", "--list", "uet/*").split()
    if branches:
        result.leftovers.append(f"branches left: {branches}")
    if (root / ".uet" / "landing.json").exists():
        result.leftovers.append("landing journal left")
    if _git(root, "status", "--porcelain", "--untracked-files=no").strip():
        result.leftovers.append("working tree differs from the landed commit")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    bad = 0
    started = time.monotonic()
    for n in range(args.rounds):
        with tempfile.TemporaryDirectory(prefix="uet-wt-soak-") as tmp:
            kill_after = rng.uniform(0.3, 3.0)
            t = trial(Path(tmp), args.steps, args.jobs, kill_after)
            problems = t.problems(args.steps)
            bad += bool(problems)
            verdict = "ok" if not problems else "BROKEN: " + "; ".join(problems)
            print(
                f"round {n + 1:>3}: killed after {kill_after:.2f}s, {t.runs} resume(s), "
                f"{t.tool_calls} tool calls: {verdict}"
            )
    took = time.monotonic() - started
    ok = args.rounds - bad
    print(f"{ok}/{args.rounds} rounds ok ({args.steps} steps, -n {args.jobs}, {took:.0f}s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
