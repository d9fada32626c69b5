"""Every bundle in workstreams/ as a doit task group: `doit list`, `doit run demo`, `doit -n 8`."""

from uet_doit.dodo_support import DOIT_CONFIG, task_generators_for

globals().update(task_generators_for("workstreams"))

__all__ = ["DOIT_CONFIG"]
