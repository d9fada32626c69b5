"""Concurrency per model provider that adapts to rate limits (AIMD).

At `-n 8` against one provider, 429s come in storms: every step retries into the same
limit. Each provider (Anthropic, OpenAI, Google, or the base URL a tool is pointed at) has
a limit on attempts in flight: it halves on a rate limit and grows by one after as many
successes in a row as the limit is, between 1 and the run's `-n` (and the tool's
`max_parallel`). The limit holds within one runner process (uet run's threads, plain doit's
threads); changes are recorded as `concurrency` events, which `uet status` shows.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

_log = logging.getLogger(__name__)

#: tool -> (provider, environment variable that points it elsewhere)
_TOOL_PROVIDERS = {
    "claude": ("anthropic", "ANTHROPIC_BASE_URL"),
    "codex": ("openai", "OPENAI_BASE_URL"),
    "gemini": ("google", "GOOGLE_GEMINI_BASE_URL"),
}
#: aider (and custom tools) by model name prefix
_MODEL_PROVIDERS = (
    (("claude", "anthropic/"), "anthropic", "ANTHROPIC_BASE_URL"),
    (("gpt", "o1", "o3", "o4", "openai/", "codex"), "openai", "OPENAI_API_BASE"),
    (("gemini", "google/", "vertex"), "google", "GOOGLE_GEMINI_BASE_URL"),
)


def provider_of(tool: str, model: str | None, env: Mapping[str, str]) -> str:
    """Who serves a tool's requests: the base URL it is pointed at, else its vendor, else
    the tool itself (a custom adapter is its own provider)."""
    found = _TOOL_PROVIDERS.get(tool)
    if found is None and model:
        name = model.lower()
        found = next(
            ((p, var) for prefixes, p, var in _MODEL_PROVIDERS if name.startswith(prefixes)), None
        )
    if found is None:
        return tool
    provider, variable = found
    base = env.get(variable, "").strip().rstrip("/")
    return base or provider


@dataclass
class AdaptiveLimit:
    """Additive increase, multiplicative decrease between 1 and `cap`. Pure."""

    cap: int
    limit: int = 0
    successes: int = 0

    def __post_init__(self) -> None:
        self.cap = max(1, self.cap)
        self.limit = self.limit or self.cap

    def rate_limited(self) -> bool:
        """Halve; True when the limit changed."""
        before, self.successes = self.limit, 0
        self.limit = max(1, self.limit // 2)
        return self.limit != before

    def succeeded(self) -> bool:
        """One more success in a row; after `limit` of them, one more slot."""
        self.successes += 1
        if self.successes < self.limit or self.limit >= self.cap:
            return False
        self.limit, self.successes = self.limit + 1, 0
        return True


class ProviderGate:
    """Attempts in flight per provider, never more than its adaptive limit (threads)."""

    def __init__(self, on_change: Callable[[str, int, str], None] | None = None) -> None:
        self._cond = threading.Condition()
        self._limits: dict[str, AdaptiveLimit] = {}
        self._in_flight: dict[str, int] = {}
        self.on_change = on_change

    def limit_of(self, provider: str) -> int | None:
        with self._cond:
            found = self._limits.get(provider)
            return None if found is None else found.limit

    @contextmanager
    def hold(
        self,
        provider: str,
        cap: int,
        on_wait: Callable[[], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> Iterator[None]:
        """Block until the provider has room; hold one place while the attempt runs."""
        with self._cond:
            limit = self._limits.setdefault(provider, AdaptiveLimit(cap))
            waited = False
            while self._in_flight.get(provider, 0) >= limit.limit:
                if not waited and on_wait is not None:
                    on_wait()
                waited = True
                if cancelled is not None and cancelled():
                    msg = f"stopped waiting for {provider}"
                    raise KeyboardInterrupt(msg)
                self._cond.wait(0.2)
            self._in_flight[provider] = self._in_flight.get(provider, 0) + 1
        try:
            yield
        finally:
            with self._cond:
                self._in_flight[provider] -= 1
                self._cond.notify_all()

    def report(self, provider: str, rate_limited: bool) -> None:
        """An attempt's outcome: a rate limit halves the limit, a success may grow it."""
        with self._cond:
            limit = self._limits.get(provider)
            if limit is None:
                return
            changed = limit.rate_limited() if rate_limited else limit.succeeded()
            value = limit.limit
            self._cond.notify_all()
        if changed:
            why = "halved after a rate limit" if rate_limited else "grown after successes"
            _log.debug("concurrency %s: %d (%s)", provider, value, why)
            if self.on_change is not None:
                self.on_change(provider, value, why)
