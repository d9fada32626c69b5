"""One `uet run`: lock the project, open or resume a run, hand the bundle to doit, close it.

Run statuses: running, succeeded, failed, interrupted, paused. Exit codes follow doit
(0 ok, 1 a step failed, 2 runtime error, 3 bad bundle/usage) plus 4 paused, 130 interrupted.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from uet_doit.bundle.graph import build_graph, dependents_of
from uet_doit.bundle.model import Bundle, effective_tool
from uet_doit.errors import (
    EXIT_ERROR,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_PAUSED,
    StateError,
    UsageError,
)
from uet_doit.run.compiler import signature, step_definition
from uet_doit.run.step_spec import STOP_ON_FAILURE_ENV
from uet_doit.state.store import RunStore, new_run_id, new_session, state_dir
from uet_doit.tools.process import kill_active_groups


@dataclass
class RunOptions:
    jobs: int = 1
    parallel_type: str = "process"
    keep_going: bool = False
    resume: str | None = None
    skip_workstreams: Sequence[str] = ()
    tasks: Sequence[str] = ()
    reporter: str | None = None
    verbosity: int | None = None
    budgets: dict[str, float] = field(default_factory=dict)
    argv: Sequence[str] = field(default_factory=list)


def bundle_hash(bundle: Bundle) -> str:
    return hashlib.sha256(bundle.model_dump_json().encode()).hexdigest()[:16]


@contextmanager
def project_lock(root: Path, run_id: str) -> Iterator[None]:
    """One run per project. A POSIX lock: the kernel drops it when its holder dies (no stale
    lock), and unlike flock it is not inherited by forked doit workers."""
    path = state_dir(root) / "run.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    fh = path.open("a+")
    try:
        fcntl.lockf(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.seek(0)
        holder = fh.read().strip() or "another run"
        fh.close()
        msg = f"this project is already running: {holder}"
        raise StateError(msg, "wait for it to finish, or stop it (Ctrl-C) first") from None
    fh.seek(0)
    fh.truncate()
    fh.write(f"run {run_id} (pid {os.getpid()})")
    fh.flush()
    try:
        yield
    finally:
        fh.seek(0)
        fh.truncate()
        fcntl.lockf(fh, fcntl.LOCK_UN)
        fh.close()


def skipped_steps(bundle: Bundle, workstreams: Sequence[str]) -> frozenset[str]:
    """Steps of skipped workstreams and everything that depends on them."""
    known = {ws.ws_id for ws in bundle.workstreams}
    for ws_id in workstreams:
        if ws_id not in known:
            import difflib

            close = difflib.get_close_matches(ws_id, sorted(known), n=1)
            hint = (
                f"did you mean {close[0]!r}?"
                if close
                else f"workstreams: {', '.join(sorted(known))}"
            )
            raise UsageError(f"--skip-workstream {ws_id}: no such workstream", hint)
    if not workstreams:
        return frozenset()
    roots = {ws.ws_id for ws in bundle.workstreams if ws.ws_id in workstreams}
    roots |= {s.step_id for ws in bundle.workstreams if ws.ws_id in roots for s in ws.steps}
    graph = build_graph(bundle)
    affected = dependents_of(graph, roots)
    return frozenset(n for n in affected if graph.kinds.get(n) == "step")


def missing_inputs(bundle: Bundle, root: Path, skip: frozenset[str]) -> list[tuple[str, str]]:
    """(step_id, path) of inputs absent from disk that no step of the bundle creates."""
    from uet_doit.bundle.graph import normalise_path

    created = {normalise_path(p) for _, s in bundle.steps() for p in s.context.create_files}
    return [
        (step.step_id, path)
        for _, step in bundle.steps()
        if step.step_id not in skip
        for path in step.context.files
        if normalise_path(path) not in created and not (root / path).exists()
    ]


def changed_steps(store: RunStore, run_id: str, bundle: Bundle) -> list[str]:
    """Steps whose definition differs from what the run last attempted."""
    last: dict[str, str] = {}
    for row in store.attempts(run_id):
        if row["signature"]:
            last[row["step_id"]] = row["signature"]
    changed = []
    for ws, step in bundle.steps():
        sig = signature(step_definition(bundle, ws, step))
        if step.step_id in last and last[step.step_id] != sig:
            changed.append(step.step_id)
    return changed


def execute(
    bundle: Bundle, bundle_file: Path, root: Path, opts: RunOptions, out: TextIO | None = None
) -> int:
    from uet_doit.observe.progress import choose_reporter
    from uet_doit.run.budget import CostLedger, apply_overrides
    from uet_doit.run.doit_bridge import BundleTaskLoader, run_doit
    from uet_doit.tools.routing import load_router_config

    out = out or sys.stdout
    router = load_router_config(root)  # a broken router_config.json stops us here, clearly
    if opts.budgets:
        bundle = apply_overrides(bundle, dict(opts.budgets))
    store = RunStore(root)
    store.check_writable()

    store.mark_dead_runs()
    digest = bundle_hash(bundle)
    if opts.resume:
        row = store.run(opts.resume)
        if row is None:
            raise UsageError(f"no run {opts.resume!r} in {store.path}", "list runs with `uet runs`")
        if row["bundle_id"] != bundle.bundle_id:
            msg = f"run {opts.resume} ran bundle {row['bundle_id']!r}, not {bundle.bundle_id!r}"
            raise UsageError(msg, "resume it with the bundle file it ran")
        run_id = opts.resume
        if row["bundle_hash"] and row["bundle_hash"] != digest:
            changed = changed_steps(store, run_id, bundle)
            out.write(
                f"bundle changed since run {run_id}; changed steps re-plan: "
                f"{', '.join(changed) or 'none (only settings changed)'}\n"
            )
    else:
        run_id = new_run_id(bundle.bundle_id)
        n = 1
        while store.run(run_id) is not None:
            n += 1
            run_id = f"{new_run_id(bundle.bundle_id)}-{n}"
    skip = skipped_steps(bundle, opts.skip_workstreams)
    missing = missing_inputs(bundle, root, skip)
    if missing:
        out.write(
            "warning: input files that do not exist and that no step creates: "
            + ", ".join(f"{path} ({step})" for step, path in missing[:10])
            + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
            + "\n"
        )

    os.environ["UET_RUN_ID"] = run_id
    new_session()
    CostLedger(store).drop_stale_reservations()
    if opts.keep_going:
        os.environ.pop(STOP_ON_FAILURE_ENV, None)
    else:
        os.environ[STOP_ON_FAILURE_ENV] = "1"
    with project_lock(root, run_id):
        store.start_run(
            run_id,
            bundle.bundle_id,
            bundle_file=str(bundle_file),
            bundle_hash=digest,
            argv=list(opts.argv),
            jobs=opts.jobs,
            resume=bool(opts.resume),
        )
        store.plan_steps(
            run_id,
            [
                (
                    s.step_id,
                    ws.ws_id,
                    effective_tool(bundle, ws, s),
                    "skipped" if s.step_id in skip else "pending",
                )
                for ws, s in bundle.steps()
            ],
        )
        for ws_id in opts.skip_workstreams:
            store.event(run_id, "workstream_skipped", None, ws_id=ws_id)
        out.write(f"run {run_id}" + (" (resumed)" if opts.resume else "") + "\n")
        if skip:
            out.write(f"skipping {len(skip)} step(s): {', '.join(sorted(skip))}\n")
        out.flush()
        # doit keeps going; steps stop themselves after a failure unless -c (see step_runner),
        # so that steps outside an exhausted budget still run
        args = ["run", "--continue"]
        if opts.jobs > 1:
            args += ["-n", str(opts.jobs), "-P", opts.parallel_type]
        if opts.verbosity is not None:
            args += ["--verbosity", str(opts.verbosity)]
        base = bundle.task_basename
        args += [t if ":" in t or t == base else f"{base}:{t}" for t in opts.tasks] or [base]
        loader = BundleTaskLoader(
            bundle, root, skip=skip, reporter=choose_reporter(opts.reporter, sys.stdout)
        )
        previous = signal.signal(signal.SIGTERM, _term_as_interrupt)
        try:
            code = run_doit(loader, args)
        except KeyboardInterrupt:
            kill_active_groups()  # thread mode: tools started by this process
            store.end_run(run_id, "interrupted", "interrupted (Ctrl-C or SIGTERM)")
            out.write(f"\ninterrupted; resume with: uet run {bundle_file} --resume {run_id}\n")
            return EXIT_INTERRUPTED
        finally:
            signal.signal(signal.SIGTERM, previous)
        states = {row["status"] for row in store.run_steps(run_id)}
        unmet = _report_criteria(bundle, root, store, run_id, out)
        if code == 0 and unmet:
            code = EXIT_FAILED
        failed = bool(states & {"failed"}) or bool(unmet)
        if code != 0 and not failed and "paused" in states:
            code = EXIT_PAUSED
        elif code != 0 and states & {"failed", "blocked", "not_started"}:
            code = EXIT_FAILED  # doit says 2 when dependents of a failed step could not run
        status = {0: "succeeded", EXIT_PAUSED: "paused"}.get(code, "failed")
        reason = None if code == 0 else _failure_reason(store, run_id)
        store.end_run(run_id, status, reason)
        if code == EXIT_PAUSED:
            out.write(
                f"run {run_id} PAUSED: {reason}\n"
                "raise the budget in the bundle (or --budget SCOPE=DOLLARS) and run again: "
                "only the steps not done yet will run\n"
            )
            notify = bundle.notify or router.notify
            if notify is not None:
                _notify(notify.command, root, run_id, bundle.bundle_id, store, out)
        elif code != 0:
            out.write(
                f"run {run_id} {status}; see `uet status {run_id}`; "
                f"resume with: uet run {bundle_file} --resume {run_id}\n"
            )
        return code if code in (0, 1, EXIT_PAUSED) else EXIT_ERROR


def _report_criteria(
    bundle: Bundle, root: Path, store: RunStore, run_id: str, out: TextIO
) -> list[str]:
    """Evaluate completion criteria; print the checklist; return the unmet ones."""
    from uet_doit.run.gates import evaluate_criteria

    results = evaluate_criteria(bundle, root, store, run_id)
    if not results:
        return []
    marks = {"met": "[x]", "unmet": "[!]", "to_confirm": "[ ]", "not_evaluated": "[-]"}
    out.write("completion criteria:\n")
    for r in results:
        note = {
            "to_confirm": " (to confirm)",
            "not_evaluated": " (not evaluated: steps not done)",
            "unmet": f" (UNMET: {r['detail']})" if r["detail"] else " (UNMET)",
        }.get(r["state"], "")
        out.write(f"  {marks[r['state']]} {r['scope']}: {r['description']}{note}\n")
    return [f"{r['scope']}: {r['description']}" for r in results if r["state"] == "unmet"]


def _failure_reason(store: RunStore, run_id: str) -> str:
    rows = store.run_steps(run_id)
    parts = []
    unmet = [
        json.loads(r["data"])["description"]
        for r in store.conn.execute(
            "SELECT data FROM events WHERE run_id=? AND kind='criterion' AND "
            "json_extract(data, '$.state')='unmet'",
            (run_id,),
        )
    ]
    if unmet:
        parts.append(f"completion criteria unmet: {'; '.join(unmet)}")
    paused = {r["message"] for r in rows if r["status"] == "paused" and r["message"]}
    parts.extend(sorted(paused))
    for state in ("failed", "blocked", "not_started"):
        steps = [r["step_id"] for r in rows if r["status"] == state]
        if steps:
            parts.append(f"{state.replace('_', ' ')}: {', '.join(steps)}")
    return "; ".join(parts) or "doit reported an error"


def _notify(
    command: Sequence[str], root: Path, run_id: str, bundle_id: str, store: RunStore, out: TextIO
) -> None:
    """The bundle's notify command; facts go in environment variables, never into a shell."""
    from uet_doit.tools.process import run_process

    pause = store.conn.execute(
        "SELECT data FROM events WHERE run_id=? AND kind='budget_paused' ORDER BY id LIMIT 1",
        (run_id,),
    ).fetchone()
    data = json.loads(pause[0]) if pause else {}
    env = dict(os.environ)
    env.update(
        {
            "UET_RUN_ID": run_id,
            "UET_BUNDLE_ID": bundle_id,
            "UET_BUDGET": str(data.get("budget", "")),
            "UET_SPENT": f"{data.get('spent', 0):.6f}",
            "UET_LIMIT": f"{data.get('limit', 0):.6f}",
            "UET_REASON": str(data.get("message", "")),
        }
    )
    try:
        result = run_process(list(command), cwd=root, env=env, timeout=60)
    except FileNotFoundError:
        out.write(f"warning: notify command not found: {command[0]}\n")
        return
    store.event(run_id, "notified", None, command=list(command), exit_code=result.exit_code)
    if result.exit_code != 0:
        out.write(f"warning: notify command exited {result.exit_code}\n")


def _term_as_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt
