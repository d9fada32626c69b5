"""Keep API keys out of logs, messages and reports.

Tools echo their environment and request headers in error output; everything uet stores or
prints from a tool goes through a Redactor built from the child's environment. Two compiled
regexes (the secret values, then common key shapes) each make one pass over the text.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

MASK = "***"
MIN_SECRET_LENGTH = 6
#: environment variable names whose values are secrets
SECRET_NAME = re.compile(r"(^|_)API_KEY$|(^|_)TOKEN$|SECRET|PASSWORD", re.I)
#: the shapes of common keys, masked even when they are not in the environment
KEY_SHAPES = (
    r"sk-[A-Za-z0-9_\-]{16,}",  # OpenAI (sk-proj-...), Anthropic (sk-ant-...)
    r"AIza[0-9A-Za-z_\-]{35}",  # Google / Gemini
    r"gh[pousr]_[A-Za-z0-9]{36,}",  # GitHub tokens
    r"github_pat_[A-Za-z0-9_]{22,}",
    r"xox[abprs]-[A-Za-z0-9\-]{10,}",  # Slack
    r"AKIA[0-9A-Z]{16}\b",  # AWS access key id
)
_SHAPES = re.compile(r"\b(?:" + "|".join(KEY_SHAPES) + ")")


_CACHE: dict[tuple[str, ...], Redactor] = {}


class Redactor:
    """Replaces known secret values and key-shaped strings with `***`."""

    def __init__(self, secrets: Iterable[str] = (), *, shapes: bool = True) -> None:
        values = {s for s in secrets if len(s) >= MIN_SECRET_LENGTH}
        # longest first, so a secret containing another is masked whole
        literals = "|".join(re.escape(v) for v in sorted(values, key=len, reverse=True))
        # two passes: a pure alternation of literals keeps re's fast literal scan
        self._patterns = [re.compile(literals)] if literals else []
        if shapes:
            self._patterns.append(_SHAPES)
        self.secret_count = len(values)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Redactor:
        """Secrets are the values of *_API_KEY, *_TOKEN, *SECRET*, *PASSWORD* variables."""
        env = os.environ if env is None else env
        return cls(value for name, value in env.items() if SECRET_NAME.search(name))

    @classmethod
    def cached_for(cls, env: Mapping[str, str]) -> Redactor:
        """from_env, compiled once per set of secret values (a step asks for every attempt)."""
        values = tuple(sorted(v for name, v in env.items() if SECRET_NAME.search(name)))
        redactor = _CACHE.get(values)
        if redactor is None:
            redactor = _CACHE[values] = cls(values)
        return redactor

    def redact(self, text: str) -> str:
        for pattern in self._patterns:
            text = pattern.sub(MASK, text)
        return text

    def redact_file(self, path: Path) -> bool:
        """Rewrite a log file in place when it holds a secret; True when it changed."""
        try:
            text = path.read_text(encoding="utf-8", errors="surrogateescape")
        except OSError:
            return False
        clean = self.redact(text)
        if clean == text:
            return False
        path.write_text(clean, encoding="utf-8", errors="surrogateescape")
        return True
