"""One exception hierarchy: every error carries its exit code and a hint for the user.

Exit codes follow doit: 0 ok, 1 a step failed, 2 runtime error, 3 bad bundle or usage,
4 paused by a budget, 130 interrupted.
"""

from __future__ import annotations

import re
from collections import Counter
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
        """The first SHOWN_PROBLEMS problems, each hint once, then the rest counted by
        kind: 100k duplicate ids are a pattern to see, not 100k lines to scroll."""
        lines: list[str] = []
        hints: set[str] = set()
        for p in self.problems[:SHOWN_PROBLEMS]:
            lines.append(Problem(p.file, p.where, p.message, None).render())
            if p.hint and p.hint not in hints:
                hints.add(p.hint)
                lines[-1] += f"\n    hint: {p.hint}"
        rest = self.problems[SHOWN_PROBLEMS:]
        if rest:
            lines.append(_more_of_the_kinds(rest))
        lines.append(f"ERROR: {self.message}")
        if self.hint:
            lines.append(f"TIP: {self.hint}")
        return "\n".join(lines)


#: problems a BundleError prints (`uet validate --json` lists every one)
SHOWN_PROBLEMS = 50
_KINDS_SHOWN = 5
#: what makes one problem of a kind differ from the next: the ids and paths it quotes
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


def _more_of_the_kinds(rest: list[Problem]) -> str:
    """`… and 99,950 more of the same kind: duplicate step_id … (99,950)`."""
    kinds = Counter(_QUOTED.sub("…", p.message) for p in rest).most_common()
    shown = "; ".join(f"{kind} ({n:,})" for kind, n in kinds[:_KINDS_SHOWN])
    if len(kinds) > _KINDS_SHOWN:
        shown += f"; {len(kinds) - _KINDS_SHOWN} other kind(s)"
    which = "of the same kind" if len(kinds) == 1 else "of these kinds"
    return (
        f"… and {len(rest):,} more {which}: {shown}\n"
        "    hint: `uet validate --json FILE` lists every problem"
    )


class UsageError(UetError):
    """Wrong command line or configuration."""

    exit_code = EXIT_USAGE


class StateError(UetError):
    """The run store (.uet/) cannot be used: corrupt, too new, not writable, or locked."""

    exit_code = EXIT_ERROR


class CacheStoreError(UetError):
    """A step cache store cannot be reached or read; a run warns and runs the step."""

    exit_code = EXIT_ERROR
