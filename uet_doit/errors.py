"""One exception hierarchy: every error carries its exit code and a hint for the user.

Exit codes follow doit: 0 ok, 1 a step failed, 2 runtime error, 3 bad bundle or usage,
4 paused by a budget, 130 interrupted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_ERROR = 2
EXIT_USAGE = 3
EXIT_PAUSED = 4
EXIT_INTERRUPTED = 130


class UetError(Exception):
    """Base of every error uet shows to a user; never printed with a traceback."""

    exit_code = EXIT_ERROR

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def render(self) -> str:
        text = f"ERROR: {self.message}"
        if self.hint:
            text += f"\nTIP: {self.hint}"
        return text


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a bundle, located as precisely as we can."""

    file: str
    where: str  # a JSON path like `workstreams[1].steps[0].depends_on` or `line 4, column 2`
    message: str
    hint: str | None = None

    def render(self) -> str:
        loc = f"{self.file}: {self.where}" if self.where else self.file
        text = f"{loc}: {self.message}"
        if self.hint:
            text += f"\n    hint: {self.hint}"
        return text


@dataclass
class BundleError(UetError):
    """A bundle that cannot be used; lists every problem found, not just the first."""

    problems: list[Problem] = field(default_factory=list)
    exit_code = EXIT_USAGE

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        files = sorted({p.file for p in problems})
        summary = f"{len(problems)} problem(s) in {', '.join(files)}"
        super().__init__(summary, "fix the places listed above, then run `uet validate` again")

    def render(self) -> str:
        lines = [p.render() for p in self.problems]
        lines.append(f"ERROR: {self.message}")
        if self.hint:
            lines.append(f"TIP: {self.hint}")
        return "\n".join(lines)


class UsageError(UetError):
    """Wrong command line or configuration."""

    exit_code = EXIT_USAGE


class StateError(UetError):
    """The run store (.uet/) cannot be used: corrupt, too new, not writable, or locked."""

    exit_code = EXIT_ERROR


class CacheStoreError(UetError):
    """A step cache store cannot be reached or read; a run warns and runs the step."""

    exit_code = EXIT_ERROR
