"""The one doit configuration: `uet run`, README's dodo.py and the one `uet bootstrap`
writes all use `DOIT_CONFIG` (`from uet_doit import DOIT_CONFIG`).

It imports nothing, so a dodo.py pays nothing for it.
"""

from __future__ import annotations

from typing import Any

DEP_FILE = ".doit.db"
BACKEND = "uet-sqlite"

#: doit settings that make plain `doit` durable (per-task commits: state/doit_backend.py),
#: keep the run store in step with doit's decisions (the `uet` reporter records them), and
#: run `-n N` on threads by default (each tool is a process anyway; doit's process runner
#: waits for ever for a worker that was killed)
DOIT_CONFIG: dict[str, Any] = {
    "backend": BACKEND,
    "dep_file": DEP_FILE,
    "verbosity": 1,
    "reporter": "uet",
    "par_type": "thread",
}
