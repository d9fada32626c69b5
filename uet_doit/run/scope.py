"""Which paths a step may change: its files, create_files and `scope` globs.

Globs: `*` and `?` stay within a folder, `**` crosses folders (`docs/**` is everything under
docs/), and an entry naming a folder (`docs/` or `docs`) covers what is under it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache


@lru_cache(maxsize=1024)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"(?:/.*)?\Z")


def _clean(path: str) -> str:
    path = path.replace("\\", "/")
    while path.startswith("./"):
        path = path[2:]
    return path.rstrip("/")


class Scope:
    """The paths (relative to the project root) a step may change."""

    def __init__(self, entries: Iterable[str]) -> None:
        self.entries = tuple(dict.fromkeys(_clean(e) for e in entries if e.strip()))

    @property
    def unlimited(self) -> bool:
        """A step that names no path at all is not limited (nothing to hold it to)."""
        return not self.entries

    def allows(self, path: str) -> bool:
        path = _clean(path)
        return self.unlimited or any(_glob_regex(e).match(path) for e in self.entries)

    def outside(self, paths: Iterable[str]) -> list[str]:
        return [p for p in paths if not self.allows(p)]
