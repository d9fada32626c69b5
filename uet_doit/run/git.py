"""git through argv lists (never a shell), `git -C`, with an environment of our own.

The variables a surrounding git command may have exported (GIT_DIR, GIT_INDEX_FILE...)
would point every call at the wrong repository or index, so they are dropped; an identity
is supplied only when the repository has none (commits must never fail for want of one).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from uet_doit.errors import UetError

#: variables that redirect git to another repository, index or work tree
_REDIRECTING = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
)
#: used when the repository (or the user) has no identity configured
FALLBACK_IDENTITY = {
    "GIT_AUTHOR_NAME": "uet",
    "GIT_AUTHOR_EMAIL": "uet@localhost",
    "GIT_COMMITTER_NAME": "uet",
    "GIT_COMMITTER_EMAIL": "uet@localhost",
}


class GitError(UetError):
    """A git command failed where uet needed it to succeed."""


@dataclass(frozen=True)
class GitResult:
    code: int
    out: str
    err: str


def git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _REDIRECTING}
    env["GIT_TERMINAL_PROMPT"] = "0"
    env["LC_ALL"] = "C"  # messages we read are in English
    if extra:
        env.update(extra)
    return env


class Git:
    """One working tree (the project, or an attempt's worktree)."""

    def __init__(self, cwd: Path, identity: Mapping[str, str] | None = None) -> None:
        self.cwd = cwd
        self.identity = dict(identity or {})

    def run(
        self,
        *args: str,
        check: bool = True,
        stdin: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> GitResult:
        argv = ["git", "-C", str(self.cwd), *args]
        proc = subprocess.run(
            argv,
            input=stdin,
            capture_output=True,
            text=True,
            env=git_env({**self.identity, **(env or {})}),
            check=False,
        )
        if check and proc.returncode != 0:
            shown = " ".join(args[:3])
            detail = (proc.stderr or proc.stdout).strip().splitlines()
            msg = f"git {shown} failed in {self.cwd}: {detail[-1] if detail else proc.returncode}"
            raise GitError(msg, "see `git status` in that folder")
        return GitResult(proc.returncode, proc.stdout, proc.stderr)

    def blob(self, rev_path: str) -> bytes | None:
        """The bytes of `REV:PATH`, or None when there is no such file."""
        argv = ["git", "-C", str(self.cwd), "cat-file", "blob", rev_path]
        proc = subprocess.run(argv, capture_output=True, env=git_env(), check=False)
        return proc.stdout if proc.returncode == 0 else None

    def out(self, *args: str) -> str:
        return self.run(*args).out.strip()

    def ok(self, *args: str) -> bool:
        return self.run(*args, check=False).code == 0

    def rev(self, ref: str) -> str | None:
        result = self.run("rev-parse", "-q", "--verify", f"{ref}^{{commit}}", check=False)
        return result.out.strip() if result.code == 0 else None

    def git_dir(self) -> Path:
        return Path(self.out("rev-parse", "--absolute-git-dir"))

    def common_dir(self) -> Path:
        path = Path(self.out("rev-parse", "--git-common-dir"))
        return path if path.is_absolute() else (self.cwd / path).resolve()

    def z_paths(self, *args: str) -> list[str]:
        """The NUL-separated paths a command prints with -z."""
        return [p for p in self.run(*args).out.split("\0") if p]


def toplevel(path: Path) -> Path | None:
    """The work tree `path` is in, or None outside git (or without git installed)."""
    try:
        result = Git(path).run("rev-parse", "--show-toplevel", check=False)
    except FileNotFoundError:
        return None
    return Path(result.out.strip()).resolve() if result.code == 0 else None


def identity_for(repo: Git) -> dict[str, str]:
    """The fallback identity, when git would refuse to commit for want of one."""
    named = repo.run("config", "user.name", check=False).out.strip()
    mail = repo.run("config", "user.email", check=False).out.strip()
    env_named = os.environ.get("GIT_AUTHOR_NAME") or os.environ.get("GIT_COMMITTER_NAME")
    if (named and mail) or env_named:
        return {}
    return dict(FALLBACK_IDENTITY)


def name_status(repo: Git, old: str, new: str) -> list[tuple[str, str]]:
    """(status letter, path) of every path that differs between two trees (no renames)."""
    fields = repo.z_paths("diff-tree", "-r", "-z", "--no-renames", "--name-status", old, new)
    return [(fields[i], fields[i + 1]) for i in range(0, len(fields) - 1, 2)]


def trailers(message: str) -> dict[str, str]:
    """`Key: value` lines of a commit message's last paragraph."""
    paragraphs = [p for p in message.strip().split("\n\n") if p.strip()]
    found: dict[str, str] = {}
    if not paragraphs:
        return found
    for line in paragraphs[-1].splitlines():
        key, sep, value = line.partition(": ")
        if sep and key and " " not in key:
            found[key] = value.strip()
    return found


def commit_message(title: str, fields: Sequence[tuple[str, str]]) -> str:
    """A subject line and trailers; values are kept on one line."""
    subject = " ".join(title.split()) or "uet step"
    lines = [f"{key}: {' '.join(str(value).split())}" for key, value in fields]
    return subject + "\n\n" + "\n".join(lines) + "\n"
