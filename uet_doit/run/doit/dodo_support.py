"""Bundles as doit task generators, for dodo.py files: `doit list`, `doit run`, `doit -n 8`.

This is the entry of plain `doit` runs: each bundle gets a RunContext of its own (so
`doit run b` is recorded under a run of bundle b), the run is registered by its first step,
closed at exit, and Ctrl-C stops the tools, records the interruption and exits 130.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from uet_doit.bundle.loader import BUNDLE_SUFFIXES, load_bundle
from uet_doit.errors import EXIT_INTERRUPTED, UetError
from uet_doit.run.context import RunContext, new_run_id
from uet_doit.run.doit.action import close_runs, install_worker_setup, stop_every_run
from uet_doit.run.doit.compiler import compile_tasks
from uet_doit.run.doit.config import DOIT_CONFIG
from uet_doit.run.doit.dispatch import install
from uet_doit.run.doit.run_actions import RunActions
from uet_doit.run.executors.adopted import attempt_pid
from uet_doit.run.scheduling import learned_schedule
from uet_doit.state.records import FAILING_STEP_STATES, RunState
from uet_doit.state.store import RunStore
from uet_doit.tools.debug_log import configure
from uet_doit.tools.process import stop_attempts
from uet_doit.tools.routing import default_known_tools

#: DOIT_CONFIG lives in doit_config.py; dodo files that import it from here keep working
__all__ = ["DOIT_CONFIG", "bundle_task_generators", "tasks_from_bundle"]


class PlainDoitRuns:
    """The runs one plain `doit` process may make (one per bundle in its dodo.py)."""

    def __init__(self) -> None:
        self.contexts: list[RunContext] = []
        self.pid = os.getpid()
        self.interrupted = False
        self._installed = False

    def context(self, root: Path, bundle_id: str) -> RunContext:
        ctx = RunContext.create(new_run_id(bundle_id, unique=True), bundle_id, root)
        self.contexts.append(ctx)
        if not self._installed:
            self._installed = True
            install_worker_setup()
            atexit.register(self.close)
            with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
                signal.signal(signal.SIGINT, self._interrupt)
                signal.signal(signal.SIGTERM, self._interrupt)
        return ctx

    def _stores(self) -> Iterator[tuple[RunContext, Any]]:
        for ctx in self.contexts:
            store = RunStore(ctx.root_path)
            if store.exists() and store.run(ctx.run_id) is not None:
                yield ctx, store

    def _interrupt(self, signum: int, frame: Any) -> None:
        """Ctrl-C or SIGTERM: stop every tool of our runs, record it, exit 130."""
        if os.getpid() != self.pid:
            return  # a worker: the runner stops everything

        self.interrupted = True
        stop_every_run()  # this process's tools (thread mode); no new tool starts
        import multiprocessing

        for worker in multiprocessing.active_children():  # -P process: they write no more
            worker.kill()
        for ctx, store in self._stores():
            stop_attempts(attempt_pid(a) for a in store.attempts(ctx.run_id) if a.is_running)
            store.end_run(ctx.run_id, RunState.INTERRUPTED, "interrupted (Ctrl-C or SIGTERM)")
            sys.stderr.write(f"\ninterrupted: run {ctx.run_id} recorded as interrupted\n")
        sys.stderr.flush()
        os._exit(EXIT_INTERRUPTED)

    def close(self) -> None:
        """At a plain `doit` run's normal exit: record how each of its runs ended (kill -9
        skips this, which is how a resumed run knows the earlier one was killed)."""
        if os.getpid() != self.pid or self.interrupted:
            return

        close_runs(self.contexts)  # the Runtimes their steps opened
        with contextlib.suppress(UetError):
            for ctx, store in self._stores():
                failed = any(r.status in FAILING_STEP_STATES for r in store.run_steps(ctx.run_id))
                store.end_run(ctx.run_id, RunState.FAILED if failed else RunState.SUCCEEDED)


_RUNS = PlainDoitRuns()


def tasks_from_bundle(
    path: str | os.PathLike[str], root: str | os.PathLike[str] | None = None
) -> Callable[[], Iterator[dict[str, Any]]]:
    """A `task_*` generator for one bundle: `task_phase_k_plus = tasks_from_bundle("x.json")`.

    A bad bundle prints its problems and exits 3, like `uet validate`, instead of a traceback.
    """
    install()  # doit builds its dispatcher after loading the dodo: ranks and parallel_ok

    try:
        configure()  # UET_LOG_LEVEL
    except UetError as exc:
        sys.stderr.write(exc.render() + "\n")
        raise SystemExit(exc.exit_code) from None

    project = (Path(root) if root is not None else Path.cwd()).resolve()
    bundle = _load_or_exit(Path(path), project)
    _mark_dead_runs(project)
    ctx = _RUNS.context(project, bundle.bundle_id)

    def generator() -> Iterator[dict[str, Any]]:
        yield from compile_tasks(
            bundle,
            project,
            RunActions(ctx),
            is_dir=lambda p: (project / p).is_dir(),
            schedule=learned_schedule(bundle, RunStore(project)),
        )

    generator.__doc__ = bundle.bundle_name or bundle.bundle_id
    generator.basename = bundle.task_basename  # type: ignore[attr-defined]
    return generator


def bundle_task_generators(
    directory: str | os.PathLike[str] = "workstreams", root: str | os.PathLike[str] | None = None
) -> dict[str, Callable[[], Iterator[dict[str, Any]]]]:
    """`task_<basename>` generators for every bundle in a folder (update a dodo's globals)."""
    folder = Path(directory)
    found: dict[str, Callable[[], Iterator[dict[str, Any]]]] = {}
    origin: dict[str, Path] = {}
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        if path.suffix.lower() not in BUNDLE_SUFFIXES or path.name.startswith("."):
            continue
        gen = tasks_from_bundle(path, root)
        name = f"task_{gen.basename}"  # type: ignore[attr-defined]
        if name in found:
            sys.stderr.write(
                f"ERROR: {path} and {origin[name]} both define bundle task "
                f"{name[5:]!r}\nTIP: give each bundle its own bundle_id\n"
            )
            raise SystemExit(3)
        found[name], origin[name] = gen, path
    return found


def _load_or_exit(path: Path, root: Path) -> Any:
    try:
        return load_bundle(path, root, known_tools=default_known_tools())
    except UetError as exc:
        sys.stderr.write(exc.render() + "\n")
        raise SystemExit(exc.exit_code) from None


def _mark_dead_runs(root: Path) -> None:
    """Close runs that were killed, so their tools can be adopted; a broken store stops here."""
    try:
        store = RunStore(root)
        if store.exists():
            store.mark_dead_runs()
    except UetError as exc:
        sys.stderr.write(exc.render() + "\n")
        raise SystemExit(exc.exit_code) from None
