"""uet-doit: workstream bundles for AI coding tools, compiled into incremental doit tasks."""

from __future__ import annotations

from uet_doit.dodo_support import bundle_task_generators, tasks_from_bundle
from uet_doit.errors import BundleError, UetError
from uet_doit.loader import load_bundle
from uet_doit.model import Bundle, Step, Workstream
from uet_doit.monitor import RunMonitor

__version__ = "0.1.0"

__all__ = [
    "Bundle",
    "BundleError",
    "RunMonitor",
    "Step",
    "UetError",
    "Workstream",
    "__version__",
    "bundle_task_generators",
    "load_bundle",
    "tasks_from_bundle",
]
