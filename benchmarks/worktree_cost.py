"""What a git worktree per step costs, in a repository of about 2,000 files.

    python benchmarks/worktree_cost.py [--files 2000] [--steps 8] [--jobs 1 4] [--repeat 3]

1. The git operations of one isolated attempt, timed one by one (median of the steps):
   worktree add (a checkout of every file), snapshot (add -A + write-tree), landing
   (commit-tree, merge-tree when the tip moved, read-tree -m -u, update-ref), removal.
2. `uet run` of the same bundle of fake-aider steps with `isolation: none` and
   `isolation: worktree`: wall time and the overhead per step.
Also prints the disk space one worktree takes.
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

import yaml

REPO = Path(__file__).resolve().parent.parent
FAKE_TOOLS = REPO / "uet_doit" / "fake_tools"
IDENT = ["-c", "user.name=Bench", "-c", "user.email=bench@localhost"]


def git(root: Path, *args: str, stdin: str | None = None) -> str:
    proc = subprocess.run(
        ["git", "-C", str(root), *IDENT, *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=True,
    )
    return proc.stdout.strip()


def make_repo(root: Path, files: int, steps: int, isolation: str) -> None:
    """`files` source-like files (about 2 kB each, 50 per folder) and a bundle of `steps`
    aider steps, each editing one line of its own file."""
    line = "x = compute(alpha, beta, gamma)  # a line of ordinary source text\n"
    for i in range(files):
        path = root / f"pkg{i // 50:03d}" / f"mod{i:05d}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# module {i}\nTARGET = {i}\n" + line * 30, encoding="utf-8")
    items = [
        {
            "step_id": f"s{i:02d}",
            "tool_profile_id": "aider",
            "context": {"files": [f"pkg000/mod{i:05d}.py"], "instruction": f"edit module {i}"},
            "env": {"FAKE_REPLACE": f"TARGET = {i}\n=>TARGET = {i}  # edited\n"},
        }
        for i in range(steps)
    ]
    bundle = {
        "bundle_id": "bench",
        "isolation": isolation,
        "workstreams": [{"ws_id": "W", "steps": items}],
    }
    (root / "bundle.yaml").write_text(yaml.safe_dump(bundle), encoding="utf-8")
    (root / ".gitignore").write_text(".uet/\n.doit.db*\n", encoding="utf-8")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "start")


def timed(fn: object, *args: object) -> float:
    started = time.perf_counter()
    fn(*args)  # type: ignore[operator]
    return time.perf_counter() - started


def phases(files: int, steps: int) -> dict[str, list[float]]:
    """Each git operation of an isolated attempt, for `steps` attempts in a row."""
    from uet_doit.run.workspaces.landing import land
    from uet_doit.run.workspaces.pool import WorktreePool
    from uet_doit.state.store import RunStore

    took: dict[str, list[float]] = {
        "add": [],
        "snapshot": [],
        "land": [],
        "reuse": [],
        "remove": [],
    }
    with tempfile.TemporaryDirectory(prefix="uet-wt-cost-") as tmp:
        root = Path(tmp)
        make_repo(root, files, steps, "worktree")
        from uet_doit.run.workspaces.git import FALLBACK_IDENTITY, Git

        top = Git(root, FALLBACK_IDENTITY)
        state = root / ".uet"
        state.mkdir()
        store = RunStore(root)
        bases = []
        for i in range(steps):  # every worktree from the same tip: landings then merge
            base = git(root, "rev-parse", "main")
            wt = state / "worktrees" / f"s{i}"
            took["add"].append(
                timed(git, root, "worktree", "add", "-q", "-b", f"uet/b/s{i}/1", str(wt), base)
            )
            bases.append((wt, base))
        for i, (wt, base) in enumerate(bases):
            target = wt / "pkg000" / f"mod{i:05d}.py"
            target.write_text(target.read_text().replace(f"TARGET = {i}\n", "TARGET = -1\n"))
            started = time.perf_counter()
            git(wt, "add", "-A")
            tree = git(wt, "write-tree")
            took["snapshot"].append(time.perf_counter() - started)
            started = time.perf_counter()
            commit = top.run("commit-tree", tree, "-p", base, stdin=f"s{i}\n\nUet-Step: s{i}\n")
            landed = land(top, state, "main", base, commit.out.strip(), {"Uet-Step": f"s{i}"})
            assert landed.ok, landed
            took["land"].append(time.perf_counter() - started)
            # what the next attempt of the run pays instead of "add": taking it over
            pool = WorktreePool(top, state, store)
            pool.park(wt, f"uet/b/s{i}/1")
            again = state / "worktrees" / f"r{i}"
            started = time.perf_counter()
            problem = pool.open(again, f"uet/b/r{i}/1", git(root, "rev-parse", "main"))
            took["reuse"].append(time.perf_counter() - started)
            assert problem is None, problem
            started = time.perf_counter()
            git(root, "worktree", "remove", "--force", str(again))
            git(root, "branch", "-D", "-q", f"uet/b/r{i}/1")
            took["remove"].append(time.perf_counter() - started)
    return took


def worktree_size(files: int) -> int:
    with tempfile.TemporaryDirectory(prefix="uet-wt-size-") as tmp:
        root = Path(tmp)
        make_repo(root, files, 1, "worktree")
        wt = root / ".uet" / "one"
        git(root, "worktree", "add", "-q", "--detach", str(wt), "main")
        return sum(p.stat().st_size for p in wt.rglob("*") if p.is_file())


def end_to_end(files: int, steps: int, jobs: int, isolation: str) -> float:
    with tempfile.TemporaryDirectory(prefix="uet-wt-run-") as tmp:
        root = Path(tmp)
        make_repo(root, files, steps, isolation)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FAKE_", "UET_"))}
        env["PATH"] = f"{FAKE_TOOLS}{os.pathsep}{env['PATH']}"
        argv = [sys.executable, "-m", "uet_doit", "run", "bundle.yaml", "-n", str(jobs)]
        argv += ["--reporter", "plain"]
        started = time.perf_counter()
        proc = subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True, check=False)
        took = time.perf_counter() - started
        if proc.returncode != 0:
            sys.exit(f"uet run failed ({isolation}):\n{proc.stdout}\n{proc.stderr}")
        if isolation == "worktree":
            count = git(root, "rev-list", "--count", "main")
            assert int(count) == steps + 1, count
        return took


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    print(f"repository: {args.files} files; {args.steps} steps; git {git(REPO, 'version')[12:]}")
    print(f"one worktree on disk: {worktree_size(args.files) / 1e6:.1f} MB (checked-out files)")
    took = phases(args.files, args.steps)
    print("\nper attempt, median of the steps (ms):")
    for name, values in took.items():
        print(
            f"  {name:<9} {statistics.median(values) * 1000:8.1f}   (max {max(values) * 1000:.1f})"
        )
    first = sum(statistics.median(took[k]) for k in ("add", "snapshot", "land", "remove"))
    later = sum(statistics.median(took[k]) for k in ("reuse", "snapshot", "land"))
    print(f"  first attempts of a run (add ... remove): {first * 1000:8.1f}")
    print(f"  later ones (reuse of a landed worktree):  {later * 1000:8.1f}")
    print(f"\nuet run, wall seconds (median of {args.repeat}):")
    print(f"  {'-n':>3} {'none':>8} {'worktree':>9} {'overhead/step':>14}")
    for jobs in args.jobs:
        none = statistics.median(
            end_to_end(args.files, args.steps, jobs, "none") for _ in range(args.repeat)
        )
        wt = statistics.median(
            end_to_end(args.files, args.steps, jobs, "worktree") for _ in range(args.repeat)
        )
        per_step = (wt - none) / args.steps * 1000
        print(f"  {jobs:>3} {none:8.2f} {wt:9.2f} {per_step:11.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
