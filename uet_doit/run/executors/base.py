"""The executor seam: where attempts run. The step policy submits an AttemptSpec and waits
for its AttemptResult; it never knows whether the attempt ran in this thread or on another
machine. `LocalExecutor` runs it right here (the doit worker's thread or process); Dask runs
it on a worker; `CachedExecutor` answers it from the step cache and `AdoptedExecutor` from a
tool a killed runner left (run/executors/cached.py, adopted.py).

An executor whose attempts start no tool says so with `starts_tools = False`: the policy
then takes no tool slot for it and records its attempt only once the answer stands."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from uet_doit.run.executors.attempt import AdapterResolver, AttemptResult, AttemptSpec, run_attempt
from uet_doit.tools.process import ToolProcesses

OnStart = Callable[[int], None]


class Declined(Exception):
    """An executor could not answer the attempt after all (a cache entry that turns out
    unusable, a left attempt with no exit code): nothing new is recorded of it, and the
    step goes on as if it had not been tried. `result` is the answer that did not stand,
    when there was one."""

    def __init__(self, message: str, result: AttemptResult | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.result = result


class AttemptHandle(Protocol):
    """One submitted attempt."""

    spec: AttemptSpec

    def done(self) -> bool: ...

    def result(self) -> AttemptResult:
        """Wait for the attempt and return what it did (never raises for a tool failure)."""
        ...

    def cancel(self) -> None:
        """Stop the attempt (its tool's processes with it) if it is still running."""
        ...


class Executor(Protocol):
    name: str

    def submit(self, spec: AttemptSpec, on_start: OnStart | None = None) -> AttemptHandle: ...

    def close(self) -> None: ...

    def stop(self) -> None:
        """Ctrl-C or SIGTERM: attempts being waited for end now, and none starts."""
        ...


def starts_tools(executor: Executor) -> bool:
    """Whether the executor's attempts start a tool (every executor but the answering ones,
    which set `starts_tools = False`)."""
    return bool(getattr(executor, "starts_tools", True))


class DoneHandle:
    """An attempt that ran to the end when it was submitted."""

    def __init__(self, spec: AttemptSpec, result: AttemptResult) -> None:
        self.spec = spec
        self._result = result

    def done(self) -> bool:
        return True

    def result(self) -> AttemptResult:
        return self._result

    def cancel(self) -> None:
        """Nothing to stop: it has finished."""


class LocalExecutor:
    """Runs each attempt in the calling thread; the tool is a child process of this one, so
    Ctrl-C, timeouts and a killed runner behave as for any local tool."""

    name = "local"
    starts_tools = True

    def __init__(
        self, resolve: AdapterResolver | None = None, processes: ToolProcesses | None = None
    ) -> None:
        self._resolve = resolve
        self._processes = processes  # the run's tools (tools/process.py)

    def submit(self, spec: AttemptSpec, on_start: OnStart | None = None) -> AttemptHandle:
        return DoneHandle(spec, run_attempt(spec, self._resolve, on_start, self._processes))

    def close(self) -> None:
        """Nothing is held between attempts."""

    def stop(self) -> None:
        """The tools are the run's processes, which the run stops itself."""
