"""The drafting tool may change no file: the project is snapshot before each call and every
file it added, changed or removed is put back afterwards (and named).

Told to change nothing, a tool still edited README.md and wrote router_config.json (a custom
adapter module uet would import). uet's own state (`.uet/`, where the draft is written) and
git's object store are not watched; a file over MAX_KEPT_BYTES is watched but not kept, so
a change to it is named, not undone.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

#: files larger than this are not copied aside (a change to one is reported, not undone)
MAX_KEPT_BYTES = 16 * 1024 * 1024
_UNWATCHED = (".uet", os.path.join(".git", "objects"))


def _stamp(st: os.stat_result) -> tuple[int, ...]:
    """What any write changes: ctime too, which no tool can set back (mtime it can)."""
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_mode)


@dataclass
class TreeGuard:
    """Files of `root` before a call, and copies of them in `keep`, to compare and restore."""

    root: Path
    keep: Path
    _before: dict[str, tuple[int, ...]] = field(default_factory=dict)
    _links: dict[str, str] = field(default_factory=dict)

    def _walk(self) -> dict[str, os.stat_result]:
        found: dict[str, os.stat_result] = {}
        for folder, dirs, files in os.walk(self.root):
            rel_dir = os.path.relpath(folder, self.root)
            dirs[:] = [
                d for d in dirs if os.path.normpath(os.path.join(rel_dir, d)) not in _UNWATCHED
            ]
            for name in files:
                rel = os.path.normpath(os.path.join(rel_dir, name))
                try:
                    found[rel] = os.lstat(os.path.join(folder, name))
                except OSError:
                    continue
        return found

    def snapshot(self) -> None:
        """Record every file and copy the ones small enough to put back."""
        shutil.rmtree(self.keep, ignore_errors=True)
        self._before, self._links = {}, {}
        for rel, st in self._walk().items():
            self._before[rel] = _stamp(st)
            src = self.root / rel
            if os.path.islink(src):
                self._links[rel] = os.readlink(src)
            elif st.st_size <= MAX_KEPT_BYTES:
                dest = self.keep / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dest)

    def restore(self) -> list[str]:
        """Put back what changed since the snapshot; the changes, one line each."""
        now = self._walk()
        changes: list[str] = []
        for rel in sorted(set(now) - set(self._before)):
            (self.root / rel).unlink(missing_ok=True)
            changes.append(f"added {rel} (removed)")
        for rel, stamp in sorted(self._before.items()):
            st = now.get(rel)
            if st is not None and _stamp(st) == stamp:
                continue
            changes.append(self._put_back(rel, "removed" if st is None else "changed"))
        shutil.rmtree(self.keep, ignore_errors=True)
        return changes

    def _put_back(self, rel: str, how: str) -> str:
        target = self.root / rel
        if rel in self._links:
            target.unlink(missing_ok=True)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(self._links[rel], target)
        elif (self.keep / rel).exists():
            target.unlink(missing_ok=True)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(self.keep / rel, target)
        else:
            return f"{how} {rel} (too large to keep: not put back)"
        return f"{how} {rel} (put back)"
