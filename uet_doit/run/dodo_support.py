"""Bundles as doit task generators, for dodo.py files: `doit list`, `doit run`, `doit -n 8`."""

from __future__ import annotations

import atexit
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from uet_doit.bundle.loader import BUNDLE_SUFFIXES, load_bundle
from uet_doit.errors import UetError

#: doit settings that make plain `doit` durable: per-task commits (see doit_backend.py)
DOIT_CONFIG: dict[str, Any] = {"backend": "uet-sqlite", "dep_file": ".doit.db", "verbosity": 1}


def tasks_from_bundle(
    path: str | os.PathLike[str], root: str | os.PathLike[str] | None = None
) -> Callable[[], Iterator[dict[str, Any]]]:
    """A `task_*` generator for one bundle: `task_phase_k_plus = tasks_from_bundle("x.json")`.

    A bad bundle prints its problems and exits 3, like `uet validate`, instead of a traceback.
    """
    from uet_doit.run.compiler import compile_tasks

    project = Path(root) if root is not None else Path.cwd()
    bundle = _load_or_exit(Path(path), project)
    _prepare_run(project, bundle.bundle_id)

    def generator() -> Iterator[dict[str, Any]]:
        root_dir = project.resolve()
        yield from compile_tasks(bundle, root_dir, is_dir=lambda p: (root_dir / p).is_dir())

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
        return load_bundle(path, root)
    except UetError as exc:
        sys.stderr.write(exc.render() + "\n")
        raise SystemExit(exc.exit_code) from None


def _prepare_run(root: Path, bundle_id: str) -> None:
    """Give plain `doit` runs a run id (shared by workers) and close runs that were killed."""
    from uet_doit.state.store import RunStore, new_run_id

    if not os.environ.get("UET_RUN_ID"):
        os.environ["UET_RUN_ID"] = new_run_id(bundle_id)
        atexit.register(_close_run, root, os.environ["UET_RUN_ID"], os.getpid())

    try:
        RunStore(root).mark_dead_runs()
    except UetError as exc:
        sys.stderr.write(exc.render() + "\n")
        raise SystemExit(exc.exit_code) from None


def _close_run(root: Path, run_id: str, pid: int) -> None:
    """At a plain `doit` run's normal exit: record how it ended (kill -9 skips this, which
    is how a resumed run knows the earlier one was killed)."""
    from uet_doit.state.store import RunStore

    if os.getpid() != pid:
        return  # a forked worker exiting
    store = RunStore(root)
    if store.run(run_id) is None:
        return  # nothing ran (doit list, up to date)
    failed = any(r["status"] in ("failed", "blocked") for r in store.run_steps(run_id))
    store.end_run(run_id, "failed" if failed else "succeeded")
