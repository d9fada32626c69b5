"""Every bundle in workstreams/ as a doit task group: `doit list`, `doit run demo`, `doit -n 8`."""

from uet_doit import DOIT_CONFIG, bundle_task_generators

globals().update(bundle_task_generators("workstreams"))

__all__ = ["DOIT_CONFIG"]  # doit reads it from here: durable backend, recording reporter
