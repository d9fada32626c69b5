"""Retry/backoff and the per-tool circuit breaker: policies around a step's attempts.

Clocks and sleeps are injected, so tests never really wait.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from uet_doit.tools.failures import NEVER_RETRIED, RETRIED_AT_ONCE, FailureClass


class Clock(Protocol):
    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """Wall clock; sleeps in short slices so Ctrl-C and shutdown interrupt a retry wait."""

    def __init__(self, stop: threading.Event | None = None) -> None:
        self.stop = stop or threading.Event()

    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        if self.stop.wait(max(0.0, seconds)):
            raise KeyboardInterrupt


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 2
    backoff_strategy: str = "exponential"
    initial_delay: float = 1.0
    max_delay: float = 60.0
    jitter: float = 0.1
    retry_on: frozenset[str] = frozenset({"timeout", "rate_limit", "transient_error", "stalled"})

    def should_retry(self, failure: FailureClass | None, attempt: int) -> bool:
        """`attempt` is the number of the attempt that just failed (1-based). A lost worker
        (the process that ran the attempt died) is retried as a transient failure."""
        if failure is None or failure in NEVER_RETRIED:
            return False
        if failure == FailureClass.WORKER_LOST:  # the machine failed, not the tool
            failure = FailureClass.TRANSIENT
        wanted = str(failure) in self.retry_on or failure in RETRIED_AT_ONCE
        return attempt <= self.max_retries and wanted

    def delay(
        self,
        attempt: int,
        retry_after: float | None = None,
        rand: Callable[[], float] = random.random,
    ) -> float:
        """Wait before attempt `attempt + 1`; a tool's own "retry after" wins when longer,
        up to `max_delay` (what the bundle allows any single wait to be)."""
        base = self.initial_delay
        if self.backoff_strategy == "exponential":
            base = self.initial_delay * (2 ** (attempt - 1))
        elif self.backoff_strategy == "linear":
            base = self.initial_delay * attempt
        wait = min(base, self.max_delay)
        if self.jitter:
            wait += wait * self.jitter * (2 * rand() - 1)
        if retry_after is not None and not math.isnan(retry_after):
            wait = max(wait, min(retry_after, self.max_delay))  # the tool's own "retry after"
        return max(0.0, wait)


@dataclass(frozen=True)
class BreakerPolicy:
    failure_threshold: int = 5
    timeout_seconds: float = 300.0  # failures older than this no longer count
    half_open_after: float = 60.0


class BreakerStatus(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass
class BreakerState:
    """One tool's breaker as stored: closed, open (until a probe), or half_open (probing)."""

    tool: str
    state: BreakerStatus = BreakerStatus.CLOSED
    failures: int = 0
    last_failure: float | None = None
    opened_at: float | None = None
    probe_started: float | None = None

    def admit(self, policy: BreakerPolicy, now: float) -> tuple[bool, bool, str]:
        """(may start, is the probe, reason). Mutates: an admitted probe marks half_open."""
        if self.state == BreakerStatus.CLOSED:
            return True, False, ""
        reopen_at = (self.opened_at or now) + policy.half_open_after
        if self.state == BreakerStatus.OPEN and now >= reopen_at:
            self.state = BreakerStatus.HALF_OPEN
            self.probe_started = now
            return True, True, "half-open: probe"
        if self.state == BreakerStatus.HALF_OPEN:
            # a probe that never reported (killed worker) does not block forever
            stale = (self.probe_started or now) + max(policy.half_open_after, 1.0) * 10
            if now >= stale:
                self.probe_started = now
                return True, True, "half-open: probe (previous probe lost)"
            return False, False, f"circuit half-open for {self.tool}: a probe step is running"
        until = time.strftime("%H:%M:%S", time.localtime(reopen_at))
        return False, False, f"circuit open for {self.tool} until {until}"

    def record(self, policy: BreakerPolicy, success: bool, now: float) -> None:
        if success:
            self.state, self.failures = BreakerStatus.CLOSED, 0
            self.opened_at = self.probe_started = None
            return
        if self.last_failure is not None and now - self.last_failure > policy.timeout_seconds:
            self.failures = 0
        self.failures += 1
        self.last_failure = now
        if self.state == BreakerStatus.HALF_OPEN or self.failures >= policy.failure_threshold:
            self.state, self.opened_at, self.probe_started = BreakerStatus.OPEN, now, None


#: failures that say something about the tool (not about the step's own work)
TOOL_FAILURES = frozenset(
    {
        FailureClass.RATE_LIMIT,
        FailureClass.TRANSIENT,
        FailureClass.TIMEOUT,
        FailureClass.PERMANENT,
        FailureClass.UNKNOWN,
        FailureClass.CONTEXT_WINDOW,
    }
)
