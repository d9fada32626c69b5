"""uet-doit: workstream bundles for AI coding tools, compiled into incremental doit tasks.

The public names are imported on first use, so `uet --version` and plain `doit` stay quick.

Imports point down only, in this order (tests/test_layers.py checks every import, and that
none goes round in a circle): cli -> api, runner -> plans -> observe -> run -> cache ->
tools -> bundle -> state -> errors, version. The cache's store sits below run and knows
nothing of a run; run/step_cache/ is the cache in a run. This package's lazy names,
__main__ and uet_doit.testing sit on top.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from uet_doit.version import __version__

_PUBLIC = {
    "Bundle": "uet_doit.bundle.model",
    "Step": "uet_doit.bundle.model",
    "Workstream": "uet_doit.bundle.model",
    "BundleError": "uet_doit.errors",
    "UetError": "uet_doit.errors",
    "RunMonitor": "uet_doit.observe.monitor",
    "DOIT_CONFIG": "uet_doit.run.doit.config",
    "bundle_task_generators": "uet_doit.run.doit.dodo_support",
    "tasks_from_bundle": "uet_doit.run.doit.dodo_support",
    "load_bundle": "uet_doit.api",
    # run a bundle from Python: run_bundle(path, **options) -> RunResult, printing nothing
    "run_bundle": "uet_doit.api",
    "RunResult": "uet_doit.observe.outcome",
    "RunStatus": "uet_doit.observe.status",
    "StepStatus": "uet_doit.observe.status",
    # for custom adapters: `class MyTool(uet_doit.ToolAdapter)` with build() and parse()
    "ToolAdapter": "uet_doit.tools.adapters.base",
    "StepRequest": "uet_doit.tools.adapters.base",
    "ToolResult": "uet_doit.tools.adapters.base",
    "Invocation": "uet_doit.tools.adapters.base",
}

if TYPE_CHECKING:
    from uet_doit.api import load_bundle, run_bundle
    from uet_doit.bundle.model import Bundle, Step, Workstream
    from uet_doit.errors import BundleError, UetError
    from uet_doit.observe.monitor import RunMonitor
    from uet_doit.observe.outcome import RunResult
    from uet_doit.observe.status import RunStatus, StepStatus
    from uet_doit.run.doit.config import DOIT_CONFIG
    from uet_doit.run.doit.dodo_support import bundle_task_generators, tasks_from_bundle
    from uet_doit.tools.adapters.base import Invocation, StepRequest, ToolAdapter, ToolResult


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    msg = f"module 'uet_doit' has no attribute {name!r}"
    raise AttributeError(msg)


__all__ = [
    "DOIT_CONFIG",
    "Bundle",
    "BundleError",
    "Invocation",
    "RunMonitor",
    "RunResult",
    "RunStatus",
    "Step",
    "StepRequest",
    "StepStatus",
    "ToolAdapter",
    "ToolResult",
    "UetError",
    "Workstream",
    "__version__",
    "bundle_task_generators",
    "load_bundle",
    "run_bundle",
    "tasks_from_bundle",
]
