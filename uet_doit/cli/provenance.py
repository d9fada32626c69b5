"""`uet log`, `uet show STEP`, `uet revert STEP`, `uet workspaces`, `uet clean`: what
isolated steps landed, and the worktrees kept after failures."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from uet_doit.errors import EXIT_OK


def _cmd_log(args: argparse.Namespace) -> int:
    from uet_doit.run.workspaces.provenance import step_commits  # lazy: start-up time

    commits = step_commits(Path.cwd(), args.ref, args.limit)
    if args.json:
        print(json.dumps([c.to_dict() for c in commits], indent=2))
        return EXIT_OK
    if not commits:
        print("no step commits on this branch")
    for c in commits:
        if c.reverts:
            print(f"{c.sha[:12]}  {c.date[:19]}  revert of {c.reverts[:12]} ({c.step_id})")
            continue
        cost = f"${float(c.cost_usd):.4f}" if c.cost_usd not in ("", "unknown") else "$?"
        print(
            f"{c.sha[:12]}  {c.date[:19]}  {c.step_id:<24} {c.tool:<8} {c.model:<18} "
            f"{cost:>9}  run {c.run_id} #{c.attempt}"
        )
    return EXIT_OK


def _cmd_show(args: argparse.Namespace) -> int:
    from uet_doit.run.workspaces.provenance import show_step  # lazy: start-up time

    commit, diff = show_step(Path.cwd(), args.step)
    if args.json:
        print(json.dumps({**commit.to_dict(), "diff": diff}, indent=2))
        return EXIT_OK
    print(f"commit    {commit.sha}")
    print(f"step      {commit.step_id} ({commit.subject})")
    print(f"workstream {commit.ws_id}")
    print(f"run       {commit.run_id}, attempt {commit.attempt}")
    print(f"tool      {commit.tool}, model {commit.model}, cost ${commit.cost_usd}")
    print(f"prompt    sha256 {commit.prompt_sha256}")
    print(f"date      {commit.date}")
    print()
    print(diff, end="")
    return EXIT_OK


def _cmd_revert(args: argparse.Namespace) -> int:
    from uet_doit.run.workspaces.provenance import revert_step  # lazy: start-up time

    commit, sha = revert_step(Path.cwd(), args.step)
    print(
        f"reverted step {args.step} ({commit.sha[:12]}) with commit {sha[:12]}; "
        "the next `uet run` does the step again"
    )
    return EXIT_OK


def _cmd_workspaces(args: argparse.Namespace) -> int:
    from uet_doit.state.records import WorkspaceState  # lazy: start-up time
    from uet_doit.state.store import RunStore  # lazy: start-up time

    store = RunStore(Path.cwd())
    rows = store.workspaces.all() if store.exists() else []
    rows = [r for r in rows if r.status != WorkspaceState.PARKED]  # only while a run runs
    if args.json:
        print(json.dumps([r.__dict__ for r in rows], indent=2, default=str))
        return EXIT_OK
    if not rows:
        print("no worktrees kept")
    for r in rows:
        cls = r.failure_class or r.status
        print(f"{r.step_id:<24} #{r.attempt:<3} {cls:<18} {r.path}  ({r.branch})")
    return EXIT_OK


def _cmd_clean(args: argparse.Namespace) -> int:
    from uet_doit.run.workspaces.git import Git, toplevel  # lazy: start-up time
    from uet_doit.run.workspaces.isolation import sweep  # lazy: start-up time
    from uet_doit.run.workspaces.worktrees import remove_worktree  # lazy: start-up time
    from uet_doit.state.project import project_lock  # lazy: start-up time
    from uet_doit.state.store import RunStore  # lazy: start-up time

    root = Path.cwd()
    store = RunStore(root)
    top = toplevel(root)
    if top is None or not store.exists():
        print("nothing to clean")
        return EXIT_OK
    repo = Git(top)
    with project_lock(root, "uet clean"):  # never under a running run's feet
        rows = store.workspaces.all()
        for record in rows:
            remove_worktree(repo, store, record)
        sweep(repo, store, root)
    print(f"removed {len(rows)} worktree(s) and their branches")
    return EXIT_OK


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("log", help="commits isolated steps landed, with provenance")
    p.add_argument("ref", nargs="?", default="HEAD", help="branch or commit (default HEAD)")
    p.add_argument("-n", "--limit", type=int, default=None, help="at most this many commits")
    p.add_argument("--json", action="store_true", help="a JSON list, one object per commit")
    p.set_defaults(handler=_cmd_log)

    p = subparsers.add_parser("show", help="a step's landed commit: provenance and diff")
    p.add_argument("step", metavar="STEP", help="the step id")
    p.add_argument("--json", action="store_true", help="the metadata and the diff as JSON")
    p.set_defaults(handler=_cmd_show)

    p = subparsers.add_parser("revert", help="revert a step's commit; the next run redoes it")
    p.add_argument("step", metavar="STEP", help="the step id whose latest commit to revert")
    p.set_defaults(handler=_cmd_revert)

    p = subparsers.add_parser("workspaces", help="worktrees kept after failed attempts")
    p.add_argument("--json", action="store_true", help="a JSON list, one object per worktree")
    p.set_defaults(handler=_cmd_workspaces)

    p = subparsers.add_parser("clean", help="remove every kept worktree and its branch")
    p.set_defaults(handler=_cmd_clean)
