"""Which Dask worker may run which tool, as the coordinator sees the cluster.

Workers that declare resources (`dask worker ... --resources "aider=2"`) are taken at their
word: they run those tools, at most that many attempts of each at once. Workers that
declare none are asked once per tool which tools they have on PATH (`describe_worker`, run
with `client.run`, outside the task queue). A tool no connected worker has gets no
placement: the caller fails the attempt instead of leaving it pending for ever.
"""

from __future__ import annotations

import math
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from uet_doit.errors import StateError
from uet_doit.run.executors.dask.worker import describe_worker
from uet_doit.tools.adapters import tool_traits

#: how long the coordinator's picture of the workers is trusted before it asks again
REFRESH_SECONDS = 1.0


@dataclass(frozen=True)
class WorkerInfo:
    address: str
    name: str  # host:pid
    resources: dict[str, float]
    sees_project: bool

    def label(self, tools: dict[str, bool]) -> str:
        if self.resources:
            have = ",".join(f"{k}={v:g}" for k, v in sorted(self.resources.items()))
            return f"{self.address} ({self.name}, resources {have})"
        found = ", ".join(sorted(t for t, ok in tools.items() if ok)) or "none of the AI tools"
        return f"{self.address} ({self.name}, on PATH: {found})"


class WorkerBook:
    """The connected workers, what each has, refreshed at most every REFRESH_SECONDS."""

    def __init__(self, client: Any, root: Path) -> None:
        self.client = client
        self.root = root
        self._lock = threading.Lock()
        self._workers: dict[str, WorkerInfo] = {}
        self._tools: dict[str, dict[str, bool]] = {}  # worker address -> tool -> on PATH
        self._refreshed_at = -math.inf
        self._asking = threading.Lock()

    def check_shared_filesystem(self) -> None:
        """Workers must see the project at the same path: tools write there, and doit
        checks targets in the coordinator's tree."""
        probe = self.root / ".uet" / f"dask-probe-{os.getpid()}"
        probe.parent.mkdir(parents=True, exist_ok=True)
        probe.write_text("uet checks that every Dask worker sees this file\n", encoding="utf-8")
        try:
            self.refresh(probe=str(probe))
        finally:
            probe.unlink(missing_ok=True)
        with self._lock:
            blind = [w for w in self._workers.values() if not w.sees_project]
        if blind:
            raise StateError(
                f"{len(blind)} Dask worker(s) do not see the project at {self.root}: "
                + ", ".join(f"{w.address} ({w.name})" for w in blind),
                "uet assumes a shared filesystem: mount the project at the same path on "
                "every worker machine",
            )

    def refresh(self, tools: list[str] | None = None, probe: str | None = None) -> None:
        """Learn the connected workers, and ask the new ones (and, for a new tool, all)
        what they have."""
        with self._lock:
            wanted = sorted(set(tools or ()) | {t for seen in self._tools.values() for t in seen})
            fresh = time.monotonic() - self._refreshed_at < REFRESH_SECONDS
            known = all(t in self._tools.get(a, {}) for a in self._workers for t in wanted)
        if fresh and known and probe is None:
            return
        # one thread asks at a time; with nothing new to learn, the others use what is known
        if not self._asking.acquire(blocking=not known or probe is not None):
            return
        try:
            self._ask(wanted, probe)
        finally:
            self._asking.release()

    def _ask(self, wanted: list[str], probe: str | None) -> None:
        info = self.client.scheduler_info(n_workers=-1)["workers"]
        with self._lock:
            self._refreshed_at = time.monotonic()
            ask = sorted(
                a
                for a in info
                if probe or a not in self._workers or any(t not in self._tools[a] for t in wanted)
            )
        answers = (
            self.client.run(describe_worker, str(self.root), wanted, probe, workers=ask)
            if ask
            else {}
        )
        with self._lock:
            for address in [a for a in self._workers if a not in info]:
                del self._workers[address]
                self._tools.pop(address, None)
            for address, answer in answers.items():
                resources = dict(info.get(address, {}).get("resources") or {})
                self._workers[address] = WorkerInfo(
                    address, str(answer["name"]), resources, bool(answer["sees_project"])
                )
                self._tools[address] = dict(answer["tools"])

    def placement(self, tool: str, *, force: bool = False) -> dict[str, Any] | None:
        """Where an attempt of `tool` may run, as `client.submit` keywords; None if no
        connected worker has it. Shell and python steps run anywhere."""
        if tool_traits(tool).local:
            return {}
        if force:
            self._refreshed_at = -math.inf
        self.refresh([tool])
        with self._lock:
            declared = [w for w in self._workers.values() if w.resources.get(tool, 0) > 0]
            detected = [
                w.address
                for w in self._workers.values()
                if not w.resources and self._tools.get(w.address, {}).get(tool)
            ]
        if declared:
            return {"resources": {tool: 1}}
        if detected:
            return {"workers": detected, "allow_other_workers": False}
        return None

    def describe(self) -> str:
        """Every worker and what it has, for messages."""
        with self._lock:
            labels = [w.label(self._tools.get(a, {})) for a, w in sorted(self._workers.items())]
        return "; ".join(labels) or "no worker connected"

    def name_of(self, address: str) -> str:
        """host:pid of a worker known by its address (the address when it is unknown)."""
        with self._lock:
            known = self._workers.get(address)
        return known.name if known else address

    def count(self) -> int:
        with self._lock:
            return len(self._workers)
