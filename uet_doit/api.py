"""`run_bundle`: run a bundle from Python and get back what happened, printing nothing.

It sits above run/ (which runs) and observe/ (which reads the run back), as cli/ does.

`uet run` is this call with `out=sys.stdout`; everything it checks before a run (the bundle,
the TASK names, skipped workstreams) raises the same `UetError` here, before a run is recorded.
"""

from __future__ import annotations

import dataclasses
import difflib
import io
import os
from pathlib import Path
from typing import Any, TextIO

from uet_doit.bundle import loader
from uet_doit.bundle.model import Bundle
from uet_doit.observe.outcome import RunResult, read_result
from uet_doit.run.doit.task_names import check_tasks, skipped_steps
from uet_doit.runner import RunOptions, run_loaded
from uet_doit.state.store import RunStore
from uet_doit.tools.routing import default_known_tools

#: the keyword options `run_bundle` takes: RunOptions' fields (README: From Python)
OPTIONS = tuple(f.name for f in dataclasses.fields(RunOptions))


class _Discard(io.StringIO):
    """Where progress goes when the caller asked for none."""

    def write(self, text: str) -> int:
        return len(text)


def load_bundle(path: str | os.PathLike[str], root: str | os.PathLike[str] | None = None) -> Bundle:
    """Read and check the bundle at `path` as `uet validate` does, against project `root`
    (default: the current directory) and the tools installed here."""
    project = Path(root) if root is not None else None
    return loader.load_bundle(Path(path), project, known_tools=default_known_tools())


def run_bundle(
    path: str | os.PathLike[str],
    root: str | os.PathLike[str] | None = None,
    *,
    out: TextIO | None = None,
    **options: Any,
) -> RunResult:
    """Run the steps of the bundle at `path` that are not up to date, in project `root`
    (default: the current directory), as `uet run` would; return its `RunResult`.

    `options` are `uet run`'s: jobs, keep_going, resume, tasks, skip_workstreams, budgets,
    cache, cache_store, executor, scheduler, dask_workers, shared_fs, into, reporter,
    verbosity. Progress is printed only when `out` is given (a text stream).
    """
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        close = [m for name in unknown for m in difflib.get_close_matches(name, OPTIONS, n=1)]
        hint = f" (did you mean {', '.join(close)}?)" if close else f"; known: {', '.join(OPTIONS)}"
        msg = f"run_bundle() got unknown option(s) {', '.join(unknown)}{hint}"
        raise TypeError(msg)
    project = Path(root) if root is not None else Path.cwd()
    bundle_file = Path(path)
    if out is None:
        options.setdefault("verbosity", 0)  # doit passes a step's stderr through at 1
        options.setdefault("quiet", True)  # warnings are in the run's events, not on stderr
    opts = RunOptions(**options)
    known = default_known_tools()
    bundle = loader.load_bundle(bundle_file, project, known_tools=known, remember=True)
    check_tasks(bundle, str(bundle_file), opts.tasks, skipped_steps(bundle, opts.skip_workstreams))
    stream = out if out is not None else _Discard()
    run_id, code = run_loaded(bundle, bundle_file, project, opts, stream)
    with RunStore(project) as store:
        return read_result(store, run_id, code, bundle)
