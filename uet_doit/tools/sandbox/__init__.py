"""The OS sandbox a tool runs in: what it may write, and how that is enforced here.

A `SandboxSpec` is an ordered list of binds, each a path and whether it is writable; a
later bind wins over an earlier one for the paths beneath it (as bubblewrap mounts do).
uet writes it as: the folders the user allows (UET_SANDBOX_ALLOW_WRITE)
writable, the project read-only, then the attempt's own folders (its worktree, its git dir,
its scratch, temp and home-state folders) writable again, then uet's and git's state
read-only.
The network is left alone: tools call model APIs.

Two mechanisms: bubblewrap (`bwrap`, a mount namespace: every bind honoured, and a pid
namespace, so nothing the tool starts outlives it) and Landlock (the kernel's own
self-restriction, no namespaces: only the writable binds that no read-only one covers
can be granted, so in place a project's `.git` and `.uet` stay writable). `auto` takes
bubblewrap when it can start here, else Landlock, else none, and `uet doctor` says which.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from uet_doit.errors import UetError

Level = Literal["auto", "bwrap", "landlock", "none"]
LEVELS: tuple[Level, ...] = ("auto", "bwrap", "landlock", "none")
#: extra folders a tool may write, separated by os.pathsep (a cache a tool keeps, say)
ALLOW_WRITE_ENV = "UET_SANDBOX_ALLOW_WRITE"
#: what a write the sandbox refused looks like in a tool's output
DENIED_MARKERS = ("Read-only file system", "EROFS", "Permission denied", "EACCES")


class SandboxUnavailable(UetError):
    """A step asks for a sandbox this machine cannot provide."""


#: a bind's kind: `rw` shared writable (the temp dir, the user's allowed folders), `ro`
#: read-only, `own` the attempt's own folders, writable even where they hold a read-only one
BindKind = Literal["rw", "ro", "own"]


@dataclass(frozen=True)
class SandboxSpec:
    """The mechanism and the ordered binds (path, kind) of one attempt."""

    level: str  # bwrap | landlock
    binds: tuple[tuple[str, str], ...]

    def to_data(self) -> dict[str, object]:
        return {"level": self.level, "binds": [[p, k] for p, k in self.binds]}

    @classmethod
    def from_data(cls, data: dict[str, object]) -> SandboxSpec:
        binds = data.get("binds") or []
        assert isinstance(binds, list)
        return cls(str(data["level"]), tuple((str(p), str(k)) for p, k in binds))

    def with_own(
        self, folders: Sequence[Path], files: Mapping[Path, str] | None = None
    ) -> SandboxSpec:
        """More paths of the attempt's own (a tool's state under $HOME), each made first when
        missing: bubblewrap binds only what exists, and Landlock grants only what it can open,
        so a tool's first run could not create them. A file is made with its starting text
        (`{}` for a JSON config, which a tool would reject empty); its folder is not granted."""
        for folder in folders:
            with contextlib.suppress(OSError):
                folder.mkdir(parents=True, exist_ok=True)
        files = files or {}
        for file, text in files.items():
            with contextlib.suppress(OSError):
                file.parent.mkdir(parents=True, exist_ok=True)
                with file.open("x", encoding="utf-8") as fh:  # never over the user's own
                    fh.write(text)
        paths = [*folders, *files]
        return SandboxSpec(self.level, (*self.binds, *((str(p), "own") for p in paths)))

    def writable(self) -> list[str]:
        """What Landlock can grant. It cannot take back part of a granted folder, so the
        folders the user allows (UET_SANDBOX_ALLOW_WRITE) are granted whole, even when a
        project lies inside one: allowing a folder is the user's explicit choice."""
        return [path for path, kind in self.binds if kind in ("own", "rw")]

    def wrap(self, argv: Sequence[str]) -> list[str]:
        """`argv` run inside the sandbox."""
        if self.level == "bwrap":
            out = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
            for path, kind in self.binds:
                out += ["--ro-bind-try" if kind == "ro" else "--bind-try", path, path]
            out += ["--unshare-pid", "--die-with-parent", "--"]
            return [*out, *argv]
        helper = Path(__file__).with_name("landlock_exec.py")
        writes = [arg for path in [*self.writable(), "/dev"] for arg in ("--write", path)]
        return [sys.executable, "-I", "-S", str(helper), *writes, "--", *argv]


@functools.cache
def bwrap_problem() -> str | None:
    """Why bubblewrap cannot sandbox here (not installed, no user namespaces), or None."""
    found = shutil.which("bwrap")
    if found is None:
        return "bwrap is not installed (Debian/Ubuntu: apt-get install bubblewrap)"
    probe = [found, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    probe += ["--unshare-pid", "--die-with-parent", "--", "true"]
    try:
        proc = subprocess.run(probe, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bwrap does not start: {exc}"
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
        return f"bwrap cannot make a sandbox here: {last}"
    return None


@functools.cache
def landlock_problem() -> str | None:
    from uet_doit.tools.sandbox.landlock_exec import abi_version  # lazy: start-up time

    version = abi_version()
    return None if version >= 1 else "the kernel has no Landlock (Linux 5.13+, enabled)"


def strongest() -> str | None:
    """The level `auto` means on this machine: bwrap, else landlock, else None."""
    if bwrap_problem() is None:
        return "bwrap"
    if landlock_problem() is None:
        return "landlock"
    return None


def resolve(requested: str) -> str | None:
    """The mechanism for a requested level (None: no sandbox); an explicit level that this
    machine cannot provide is an error, never a silent `none`."""
    if requested == "none":
        return None
    if requested == "auto":
        return strongest()
    problem = bwrap_problem() if requested == "bwrap" else landlock_problem()
    if problem:
        raise SandboxUnavailable(
            f"sandbox `{requested}` is not available on this machine: {problem}",
            "install it, or set `sandbox: auto` (the strongest available) or `sandbox: none`",
        )
    return requested


def describe() -> str:
    """One line per mechanism, for `uet doctor`."""
    chosen = strongest()
    lines = [f"sandbox: auto = {chosen or 'none (tools can write anywhere you can)'}"]
    for name, problem in (("bwrap", bwrap_problem()), ("landlock", landlock_problem())):
        lines.append(f"  {name}: {'available' if problem is None else problem}")
    return "\n".join(lines)


def allowed_by_user(env: dict[str, str] | None = None) -> list[str]:
    text = (env if env is not None else os.environ).get(ALLOW_WRITE_ENV, "")
    return [str(Path(p).expanduser()) for p in text.split(os.pathsep) if p.strip()]


def attempt_spec(level: str, layers: Sequence[tuple[Sequence[Path], BindKind]]) -> SandboxSpec:
    """The binds of one attempt: the user's allowed folders writable, then `layers` in
    order (own folders are made when missing, so they can be bound). The shared temp dir
    is not among them: the attempt gets a temp dir of its own (TMPDIR), so nothing of the
    project, should it live under /tmp, becomes writable through it."""
    binds: list[tuple[str, str]] = [(p, "rw") for p in allowed_by_user()]
    for paths, kind in layers:
        for path in paths:
            if kind == "own":
                path.mkdir(parents=True, exist_ok=True)
            binds.append((str(path), kind))
    return SandboxSpec(level, tuple(dict.fromkeys(binds)))
