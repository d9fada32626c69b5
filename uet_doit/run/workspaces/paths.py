"""Path safety at the moment a step starts, on the filesystem as it is then.

Validation checked the bundle's paths once; an earlier step (or a prompt-injected tool) may
since have replaced a folder with a symlink leading out of the project. Each attempt checks
again, before its tool starts: every folder on the way and a final symlink must stay inside.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path


def escape_of(root: str, rel: str) -> str | None:
    """The outside target `rel` leads to (through a symlinked folder or a final symlink)."""
    folder, name = os.path.split(rel.rstrip("/"))
    real_folder = os.path.realpath(os.path.join(root, folder))
    target = os.path.join(real_folder, name) if name else real_folder
    if name and os.path.islink(target):
        target = os.path.realpath(target)
    if target == root or target.startswith(root + os.sep):
        return None
    return target


def unsafe_paths(root: Path, paths: Iterable[str]) -> str | None:
    """A message naming each path that leaves the project root now, or None."""
    real_root = os.path.realpath(root)
    bad = []
    for rel in dict.fromkeys(paths):
        target = escape_of(real_root, rel)
        if target is not None:
            bad.append(f"{rel!r} -> {target}")
    if not bad:
        return None
    return (
        "refusing to start: these paths lead outside the project root "
        f"({real_root}) through a symlink: {'; '.join(bad)}"
    )
