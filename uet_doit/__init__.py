"""uet-doit: workstream bundles for AI coding tools, compiled into incremental doit tasks.

The public names are imported on first use, so `uet --version` and plain `doit` stay quick.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_PUBLIC = {
    "Bundle": "uet_doit.model",
    "Step": "uet_doit.model",
    "Workstream": "uet_doit.model",
    "BundleError": "uet_doit.errors",
    "UetError": "uet_doit.errors",
    "RunMonitor": "uet_doit.monitor",
    "bundle_task_generators": "uet_doit.dodo_support",
    "tasks_from_bundle": "uet_doit.dodo_support",
    "load_bundle": "uet_doit.loader",
}

if TYPE_CHECKING:
    from uet_doit.dodo_support import bundle_task_generators, tasks_from_bundle
    from uet_doit.errors import BundleError, UetError
    from uet_doit.loader import load_bundle
    from uet_doit.model import Bundle, Step, Workstream
    from uet_doit.monitor import RunMonitor


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    msg = f"module 'uet_doit' has no attribute {name!r}"
    raise AttributeError(msg)


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
