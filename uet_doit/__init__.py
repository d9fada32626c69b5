"""uet-doit: workstream bundles for AI coding tools, compiled into incremental doit tasks."""

from __future__ import annotations

from uet_doit.dodo_support import bundle_task_generators, tasks_from_bundle
from uet_doit.errors import BundleError, UetError
from uet_doit.loader import load_bundle
from uet_doit.model import Bundle, Step, Workstream

__version__ = "0.1.0"

__all__ = [
    "Bundle",
    "BundleError",
    "Step",
    "UetError",
    "Workstream",
    "__version__",
    "load_bundle",
    "bundle_task_generators",
    "tasks_from_bundle",
]
