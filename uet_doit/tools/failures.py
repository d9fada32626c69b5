"""Failure classes: what went wrong with an attempt, which decides retry and the breaker."""

from __future__ import annotations

import re
from enum import StrEnum


class FailureClass(StrEnum):
    RATE_LIMIT = "rate_limit"
    TIMEOUT = "timeout"
    TRANSIENT = "transient_error"
    VALIDATION = "validation_failed"
    PERMANENT = "permanent"
    CONTEXT_WINDOW = "context_window"
    MISSING_OUTPUT = "missing_output"
    CIRCUIT_OPEN = "circuit_open"
    BUDGET = "budget_exceeded"
    INTERRUPTED = "interrupted"
    NOT_INSTALLED = "not_installed"  # the tool is not on PATH: a set-up problem, not the tool's
    BUNDLE = "bundle_error"  # e.g. a validation command that does not exist
    WORKER_LOST = "worker_lost"  # the process running the attempt died
    # isolated steps (run/workspaces/worktrees.py), and remote attempts without a shared filesystem:
    # what happened around the tool, not the tool itself
    WORKSPACE_SETUP = "workspace_setup"  # the attempt's tree could not be prepared
    SCOPE_VIOLATION = "scope_violation"  # changed paths outside files/create_files/scope
    MERGE_CONFLICT = "merge_conflict"  # the step's change conflicts with the landed tip
    UNCOMMITTED_EDIT = "uncommitted_edit"  # the user edits a file the step changed
    TAMPERED = "tampered"  # the tool changed git's config/hooks or moved the landing branch
    SANDBOX_DENIED = "sandbox_denied"  # the tool wrote where its sandbox does not let it
    STALLED = "stalled"  # alive but silent: no output and no file change for a while
    # `review: {steps: true}` (run/review/reviewer.py): judged by a reviewer model before landing
    REVIEW_REJECTED = "review_rejected"  # its reasons go back to the step's tool (fix loop)
    NO_VERDICT = "no_verdict"  # the reviewer gave no usable answer: the step is not landed
    UNKNOWN = "unknown"


#: never retried, whatever retry_on says: the same call would fail the same way
NEVER_RETRIED = frozenset(
    {
        FailureClass.PERMANENT,
        FailureClass.CIRCUIT_OPEN,
        FailureClass.BUDGET,
        FailureClass.INTERRUPTED,
        FailureClass.CONTEXT_WINDOW,
        FailureClass.NOT_INSTALLED,
        FailureClass.BUNDLE,
        FailureClass.UNCOMMITTED_EDIT,
        FailureClass.TAMPERED,
        FailureClass.SANDBOX_DENIED,
        FailureClass.REVIEW_REJECTED,  # the fix loop, not a retry, answers a rejection
        FailureClass.NO_VERDICT,  # the reviewer's own attempts were retried already
    }
)

#: retried whatever retry_on says (up to max_retries), at once: the next attempt starts
#: from the new tip, so waiting gains nothing
RETRIED_AT_ONCE = frozenset({FailureClass.MERGE_CONFLICT})

# Order matters: an auth error that mentions "retry" is still permanent.
_PATTERNS: tuple[tuple[FailureClass, re.Pattern[str]], ...] = (
    (
        FailureClass.PERMANENT,
        re.compile(
            r"\b(401|403)\b|unauthori[sz]ed|forbidden|invalid[ _-]?api[ _-]?key|"
            r"authenticat|not logged in|permission denied|\b400\b|bad request|"
            r"no such file or directory|file not found|command not found|not found on path",
            re.I,
        ),
    ),
    (
        FailureClass.CONTEXT_WINDOW,
        re.compile(r"context[ _-]?window|context length|maximum context|too many tokens", re.I),
    ),
    (
        FailureClass.RATE_LIMIT,
        re.compile(r"\b429\b|rate[ _-]?limit|too many requests|quota|resource.exhausted", re.I),
    ),
    (
        FailureClass.TRANSIENT,
        re.compile(
            r"\b50[0-4]\b|overloaded|internal server error|service unavailable|bad gateway|"
            r"connection (reset|refused|error|aborted)|temporar(y|ily)|timed? ?out|"
            r"name resolution|try again|econnreset|econnrefused|high demand",
            re.I,
        ),
    ),
)

#: the longest wait a tool's "retry after" can ask for (a day, max_delay's own bound); the
#: step's `resilience.max_delay` caps it further
MAX_RETRY_AFTER_S = 24 * 3600.0
_MAX_DIGITS = 9  # more digits in the whole seconds than a day has: the ceiling, unparsed
_RETRY_AFTER = re.compile(
    r"retry[- ]after[:=]?\s*(\d+(?:\.\d+)?)\s*(ms|s|sec|seconds?)?|"
    r"(?:try again|retry) in\s*(\d+(?:\.\d+)?)\s*(ms|s|sec|seconds?)",
    re.I,
)


def classify(exit_code: int | None, output: str, *, timed_out: bool = False) -> FailureClass:
    """Turn a failed attempt's exit code and output into a class; output wins over the code."""
    if timed_out:
        return FailureClass.TIMEOUT
    for cls, pattern in _PATTERNS:
        if pattern.search(output):
            return cls
    if exit_code in (126, 127):
        return FailureClass.PERMANENT
    if exit_code is not None and exit_code < 0:
        return FailureClass.TRANSIENT  # killed by a signal (OOM killer, a crash)
    return FailureClass.UNKNOWN


def retry_after_seconds(output: str) -> float | None:
    """The wait a tool asked for ("Retry-After: 30", "try again in 2.5s"), if it said one,
    at most MAX_RETRY_AFTER_S: a tool's output is not trusted to park a run for years (or
    to overflow a timer with a 400-digit number)."""
    match = _RETRY_AFTER.search(output)
    if not match:
        return None
    number = match.group(1) or match.group(3)
    unit = (match.group(2) or match.group(4) or "s").lower()
    whole = number.partition(".")[0]
    if len(whole) > _MAX_DIGITS:
        return MAX_RETRY_AFTER_S
    value = float(number) / (1000 if unit == "ms" else 1)
    return min(value, MAX_RETRY_AFTER_S)
