"""uet's way into doit's API: a task loader for one bundle, and task up-to-date status."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from doit.cmd_base import TaskLoader2
from doit.doit_cmd import DoitMain
from doit.loader import generate_tasks

from uet_doit.bundle.model import Bundle
from uet_doit.run.doit.compiler import NoActions, TaskActions, compile_tasks
from uet_doit.run.doit.config import BACKEND, DEP_FILE, DOIT_CONFIG
from uet_doit.run.scheduling import StepSchedule
from uet_doit.state.doit_backend import DurableSqliteDB

__all__ = ["BACKEND", "DEP_FILE", "BundleTaskLoader", "run_doit", "task_status"]


class BundleTaskLoader(TaskLoader2):  # type: ignore[misc]
    """Feeds one compiled bundle to doit, leaving out the steps a run skips."""

    def __init__(
        self,
        bundle: Bundle,
        root: Path,
        actions: TaskActions,
        skip: frozenset[str] = frozenset(),
        reporter: Any = None,
        extra_config: dict[str, Any] | None = None,
        signatures: dict[str, str] | None = None,
        schedule: Mapping[str, StepSchedule] | None = None,
    ) -> None:
        super().__init__()
        self.bundle = bundle
        self.root = root
        self.actions = actions
        self.skip = skip
        self.reporter = reporter
        self.extra_config = extra_config or {}
        self.signatures = signatures
        self.schedule = schedule

    def _is_dir(self, path: str) -> bool:
        return (self.root / path).is_dir()

    def setup(self, opt_values: dict[str, Any]) -> None:
        """doit's TaskLoader2 hook for command-line options: the bundle is given already."""

    def load_doit_config(self) -> dict[str, Any]:
        # doit binds its default output to sys.stdout at import; use the current one
        config: dict[str, Any] = {**DOIT_CONFIG, "outfile": sys.stdout}
        if self.reporter is not None:
            config["reporter"] = self.reporter
        config.update(self.extra_config)
        return config

    def load_tasks(self, cmd: Any, pos_args: Sequence[str]) -> list[Any]:
        dicts = list(
            compile_tasks(
                self.bundle,
                self.root,
                self.actions,
                skip=self.skip,
                is_dir=self._is_dir,
                signatures=self.signatures,
                schedule=self.schedule,
            )
        )
        tasks: list[Any] = generate_tasks(
            self.bundle.task_basename,
            (d for d in dicts),
            self.bundle.bundle_name or self.bundle.bundle_id,
        )
        return tasks


def run_doit(loader: BundleTaskLoader, args: Sequence[str]) -> int:
    """Run a doit command (`run`, `list`, ...) in-process with our loader and config."""
    from uet_doit.run.doit.action import install_worker_setup  # lazy: start-up time
    from uet_doit.run.doit.dispatch import install  # lazy: start-up time

    install_worker_setup()
    install()
    main = DoitMain(loader, config_filenames=())
    code: int = main.run(list(args))
    return code


def task_status(
    bundle: Bundle,
    root: Path,
    skip: frozenset[str] = frozenset(),
    schedule: Mapping[str, StepSchedule] | None = None,
) -> dict[str, str]:
    """doit's verdict per step without running anything: 'up-to-date', 'run' or 'error'.
    `schedule`, when the caller has it, is not planned again (the verdict ignores it)."""
    from doit.dependency import Dependency, JSONCodec, MD5Checker

    dicts = list(
        compile_tasks(
            bundle,
            root,
            NoActions(),
            skip=skip,
            is_dir=lambda p: (root / p).is_dir(),
            schedule=schedule,
        )
    )
    tasks = generate_tasks(bundle.task_basename, (d for d in dicts))
    by_name = {t.name: t for t in tasks}
    dep = Dependency(
        DurableSqliteDB, str(root / DEP_FILE), checker_cls=MD5Checker, codec_cls=JSONCodec
    )
    out: dict[str, str] = {}
    try:
        for task in tasks:
            if "uet" not in (task.meta or {}):
                continue  # groups and gates
            step_id = task.name.split(":", 1)[1]
            try:
                out[step_id] = dep.get_status(task, by_name).status
            except Exception:
                out[step_id] = "error"
    finally:
        dep.close()
    return out
