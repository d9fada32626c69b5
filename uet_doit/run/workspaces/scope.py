"""Which paths a step may change: its files, create_files and `scope` globs.

Globs: `*` and `?` stay within a folder, `**` crosses folders (`docs/**` is everything under
docs/), and an entry naming a folder (`docs/` or `docs`) covers what is under it.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable
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


def _literal_head(entry: str) -> str:
    """The part of a glob before its first wildcard: every path it matches starts so."""
    cut = min((i for i, ch in enumerate(entry) if ch in "*?["), default=len(entry))
    return entry[:cut]


def overlaps(a: Scope, b: Scope) -> bool:
    """Could a path be in both? Conservative for globs (their literal heads are compared):
    serialising two steps too many is safe, running two overlapping ones at once is not."""
    if a.unlimited or b.unlimited:
        return True
    for x in a.entries:
        for y in b.entries:
            if a.allows(y) or b.allows(x):
                return True
            hx, hy = _literal_head(x), _literal_head(y)
            if (hx != x or hy != y) and (hx.startswith(hy) or hy.startswith(hx)):
                return True
    return False


class ScopeGate:
    """`conflicts: serialize`: a step waits while a running step's scope overlaps its own,
    when either of the two asked to be serialised. Steps of one run share one gate."""

    def __init__(self) -> None:
        self._running: dict[object, tuple[Scope, bool]] = {}
        self._changed = threading.Condition()

    def _blocker_of(self, me: object, scope: Scope, serialize: bool) -> object | None:
        for key, (other, other_serial) in self._running.items():
            if key != me and (serialize or other_serial) and overlaps(scope, other):
                return key
        return None

    def enter(
        self, key: object, scope: Scope, serialize: bool, on_wait: Callable[[object], None]
    ) -> None:
        with self._changed:
            told = False
            # its own key again (an attempt number reused after a cache miss) never blocks
            while (blocker := self._blocker_of(key, scope, serialize)) is not None:
                if not told:
                    on_wait(blocker)
                    told = True
                self._changed.wait(0.5)
            self._running[key] = (scope, serialize)

    def leave(self, key: object) -> None:
        with self._changed:
            if self._running.pop(key, None) is not None:
                self._changed.notify_all()
