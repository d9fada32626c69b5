"""The project a command works on: its root, found upward as git does, and its one-run lock."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from uet_doit.errors import StateError
from uet_doit.state.rows import state_dir


def find_root(start: Path, bundle: Path | None = None) -> Path:
    """The nearest folder holding `.uet/`, looking up from `start`, then from the bundle's
    folder; `start` itself when there is none (a project that has not run yet)."""
    for origin in (start, *([bundle.resolve().parent] if bundle is not None else [])):
        for folder in (origin.resolve(), *origin.resolve().parents):
            if (folder / ".uet").is_dir():
                return folder
    return start


@contextmanager
def project_lock(root: Path, run_id: str) -> Iterator[None]:
    """One run per project. The lock is a flock on the `.uet` folder itself, so deleting
    the `run.lock` note cannot let a second run in; the kernel drops it when its holder
    dies (no stale lock), and the descriptor is close-on-exec, so no tool inherits it."""
    folder = state_dir(root)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        msg = f"cannot use {folder}: {exc.strerror or exc}"
        raise StateError(msg, f"make {folder} a writable folder") from None
    note = folder / "run.lock"
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        try:
            holder = note.read_text().strip() or "another run"
        except OSError:
            holder = "another run"
        msg = f"this project is already running: {holder}"
        raise StateError(msg, "wait for it to finish, or stop it (Ctrl-C) first") from None
    try:
        note.write_text(f"run {run_id} (pid {os.getpid()})")
        yield
    finally:
        with suppress(OSError):
            note.write_text("")
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def profile_sandbox(root: Path) -> str:
    """`sandbox:` of the project's PROJECT_PROFILE.yaml (what `uet bootstrap` writes), else
    `auto`. The bundle's levels win over it; an unreadable profile is the cache's to report."""
    import yaml

    profile = root / "PROJECT_PROFILE.yaml"
    try:
        data = yaml.safe_load(profile.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return "auto"
    value = data.get("sandbox") if isinstance(data, dict) else None
    return value if value in ("auto", "bwrap", "landlock", "none") else "auto"
