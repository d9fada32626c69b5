"""Retry policy, breaker state machine and failure classes: pure, with an injected clock."""

from __future__ import annotations

import pytest

from uet_doit.run.resilience import BreakerPolicy, BreakerState, RetryPolicy
from uet_doit.tools.failures import (
    MAX_RETRY_AFTER_S,
    FailureClass,
    classify,
    retry_after_seconds,
)


@pytest.mark.parametrize(
    ("strategy", "waits"),
    [
        ("exponential", [1, 2, 4, 8, 10]),
        ("linear", [1, 2, 3, 4, 5]),
        ("constant", [1, 1, 1, 1, 1]),
    ],
)
def test_backoff_strategies_are_capped(strategy: str, waits: list[float]) -> None:
    policy = RetryPolicy(backoff_strategy=strategy, initial_delay=1, max_delay=10, jitter=0)
    assert [policy.delay(n) for n in range(1, 6)] == waits


def test_jitter_spreads_within_its_fraction() -> None:
    policy = RetryPolicy(initial_delay=10, max_delay=100, jitter=0.2)
    assert policy.delay(1, rand=lambda: 0.0) == pytest.approx(8)
    assert policy.delay(1, rand=lambda: 1.0) == pytest.approx(12)


def test_tools_retry_after_wins_when_longer_up_to_max_delay() -> None:
    policy = RetryPolicy(initial_delay=1, max_delay=45, jitter=0)
    assert policy.delay(1, retry_after=30) == 30
    assert policy.delay(1, retry_after=0.5) == 1
    assert policy.delay(1, retry_after=999_999_999) == 45
    assert policy.delay(1, retry_after=float("inf")) == 45
    assert policy.delay(1, retry_after=float("nan")) == 1


def test_only_listed_classes_are_retried_and_never_permanent() -> None:
    policy = RetryPolicy(max_retries=2, retry_on=frozenset({"rate_limit", "permanent"}))
    assert policy.should_retry(FailureClass.RATE_LIMIT, 1)
    assert policy.should_retry(FailureClass.RATE_LIMIT, 2)
    assert not policy.should_retry(FailureClass.RATE_LIMIT, 3)
    assert not policy.should_retry(FailureClass.TIMEOUT, 1)
    assert not policy.should_retry(FailureClass.PERMANENT, 1)


@pytest.mark.parametrize(
    ("text", "code", "expected"),
    [
        ("Error: 429 Too Many Requests", 1, FailureClass.RATE_LIMIT),
        ("You exceeded your current quota", 1, FailureClass.RATE_LIMIT),
        ("litellm.RateLimitError: rate limited", 0, FailureClass.RATE_LIMIT),
        ("503 Service Unavailable", 1, FailureClass.TRANSIENT),
        ("The server is overloaded", 1, FailureClass.TRANSIENT),
        ("connection reset by peer", 1, FailureClass.TRANSIENT),
        ("Temporary failure in name resolution", 1, FailureClass.TRANSIENT),
        ("401 Unauthorized: invalid API key", 1, FailureClass.PERMANENT),
        ("403 Forbidden", 1, FailureClass.PERMANENT),
        ("400 Bad Request", 1, FailureClass.PERMANENT),
        ("sh: 1: frobnicate: not found", 127, FailureClass.PERMANENT),
        ("ContextWindowExceededError: context length", 1, FailureClass.CONTEXT_WINDOW),
        ("something odd happened", 1, FailureClass.UNKNOWN),
    ],
)
def test_classifier_reads_the_output(text: str, code: int, expected: FailureClass) -> None:
    assert classify(code, text) == expected


def test_timeout_and_signals() -> None:
    assert classify(None, "", timed_out=True) == FailureClass.TIMEOUT
    assert classify(-9, "") == FailureClass.TRANSIENT


def test_retry_after_parsing() -> None:
    assert retry_after_seconds("Retry-After: 30") == 30
    assert retry_after_seconds("please try again in 2.5s") == 2.5
    assert retry_after_seconds("retry after 1500ms") == 1.5
    assert retry_after_seconds("Retrying in 0.2 seconds...") is None  # aider's own retries
    assert retry_after_seconds("try again in 999999999s") == MAX_RETRY_AFTER_S
    assert retry_after_seconds("Retry-After: " + "9" * 400) == MAX_RETRY_AFTER_S
    assert retry_after_seconds("try again in " + "9" * 400 + ".5ms") == MAX_RETRY_AFTER_S


def test_breaker_opens_probes_and_closes() -> None:
    policy = BreakerPolicy(failure_threshold=3, timeout_seconds=300, half_open_after=60)
    br = BreakerState("aider")
    for t in (0, 1, 2):
        assert br.admit(policy, t)[0]
        br.record(policy, False, t)
    assert br.state == "open"
    allowed, _, reason = br.admit(policy, 30)
    assert not allowed and reason.startswith("circuit open for aider until")
    allowed, probe, _ = br.admit(policy, 62)
    assert allowed and probe and br.state == "half_open"
    assert not br.admit(policy, 63)[0]  # only one probe at a time
    br.record(policy, True, 64)
    assert br.state == "closed" and br.admit(policy, 65)[0]


def test_failed_probe_reopens_and_old_failures_expire() -> None:
    policy = BreakerPolicy(failure_threshold=2, timeout_seconds=10, half_open_after=5)
    br = BreakerState("codex")
    br.record(policy, False, 0)
    br.record(policy, False, 20)  # the first failure is older than timeout_seconds
    assert br.state == "closed"
    br.record(policy, False, 21)
    assert br.state == "open"
    assert br.admit(policy, 27)[1]
    br.record(policy, False, 28)
    assert br.state == "open" and not br.admit(policy, 29)[0]
