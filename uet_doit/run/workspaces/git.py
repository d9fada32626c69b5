"""git through argv lists (never a shell), `git -C`, with an environment of our own.

The variables a surrounding git command may have exported (GIT_DIR, GIT_INDEX_FILE...)
would point every call at the wrong repository or index, so they are dropped; an identity
is supplied only when the repository has none (commits must never fail for want of one).

A tool that ran before uet's next git call may have planted code git would run: hooks,
an fsmonitor, a `core.hooksPath`, system or global config. Every call therefore switches
those off on its command line (`SAFE_CONFIG`), reads no system or global config, and a
worktree's git dir can be named explicitly (`git_dir`), so the `.git` file a tool could
rewrite is never followed. Repository config a tool could have edited is compared with a
snapshot taken before it ran (`GitSurface`).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import stat
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
#: on every call: no hook, no fsmonitor daemon, no untracked cache a tool could seed, no
#: transport that could run a helper program
SAFE_CONFIG = (
    "-c",
    "core.hooksPath=/dev/null",
    "-c",
    "core.fsmonitor=false",
    "-c",
    "core.untrackedCache=false",
    "-c",
    "core.attributesFile=/dev/null",
    "-c",
    "protocol.allow=never",
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
    argv: tuple[str, ...] = ()
    cwd: str = ""

    def failure(self, doing: str) -> GitFailure:
        return GitFailure(doing, self.argv, self.code, self.err or self.out, self.cwd)


_ELSEWHERE = (
    "that branch is checked out in another worktree: switch that worktree to another branch "
    "(or `git worktree remove` it), then run again"
)
#: what git's first words most often mean, and what to do (`{lock}`: the lock file named)
_ADVICE = (
    (
        ".lock': file exists",
        "another git command holds the repository's lock (an editor, a git in another "
        "terminal): wait for it; if none is running, a crashed one left it: remove {lock}",
    ),
    ("is already checked out at", _ELSEWHERE),
    ("is already used by worktree", _ELSEWHERE),
    ("not a git repository", "run uet in a git repository (`git init`) or use `isolation: none`"),
    (
        "dubious ownership",
        "git refuses a repository another user owns: `git config --global --add "
        "safe.directory PATH` if you trust it",
    ),
    ("no space left on device", "the disk is full: free some space, then run again"),
    ("permission denied", "check the owner and permissions of the repository's files"),
)
_LOCK = re.compile(r"'([^']+\.lock)'")
_SHA = re.compile(r"\A[0-9a-f]{40}(?:[0-9a-f]{24})?\Z")
_SHOWN_ARGS = 8


@dataclass(frozen=True)
class GitFailure:
    """A failed git command, told the way a user can act on: what uet was doing, the
    command (shortened), git's first line, and what to do (git's own text runs to a
    paragraph of hints about commands uet never asked for)."""

    doing: str
    argv: Sequence[str]
    code: int
    said: str
    cwd: str = ""

    @property
    def first_line(self) -> str:
        lines = [ln.strip() for ln in self.said.splitlines() if ln.strip()]
        return lines[0][:300] if lines else f"(nothing; exit code {self.code})"

    @property
    def command(self) -> str:
        return shown_command(self.argv)

    @property
    def advice(self) -> str:
        said = self.said.lower()
        for words, what in _ADVICE:
            if words in said:
                lock = _LOCK.search(self.said)
                return what.format(lock=lock.group(1) if lock else "the .lock file")
        where = f" in {self.cwd}" if self.cwd else ""
        return f"run `{self.command}`{where} to see git's whole message; `git status` there"

    def line(self) -> str:
        """One line, for a step's failure message."""
        return f"could not {self.doing}: `{self.command}` said: {self.first_line} ({self.advice})"

    def error(self) -> GitError:
        where = f" (in {self.cwd})" if self.cwd else ""
        message = (
            f"could not {self.doing}: git failed (exit code {self.code})\n"
            f"  command: {self.command}{where}\n"
            f"  git said: {self.first_line}"
        )
        return GitError(message, self.advice)


def shown_command(argv: Sequence[str]) -> str:
    """`git read-tree -m -u 1a2b3c4d5e6f 7a8b9c0d1e2f`: without the options uet adds to
    every call, object names cut to 12 characters, long lists cut."""
    args: list[str] = []
    skip = False
    for arg in argv[1:] if argv and argv[0] == "git" else argv:
        if skip:
            skip = False
            continue
        if arg in ("-C", "-c"):
            skip = True
            continue
        if arg.startswith(("--git-dir=", "--work-tree=")):
            continue
        args.append(arg[:12] if _SHA.match(arg) else arg if len(arg) <= 80 else arg[:77] + "...")
    more = f" ... ({len(args) - _SHOWN_ARGS} more)" if len(args) > _SHOWN_ARGS else ""
    return " ".join(["git", *(shlex.quote(a) for a in args[:_SHOWN_ARGS])]) + more


def git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _REDIRECTING}
    env["GIT_TERMINAL_PROMPT"] = "0"
    env["GIT_CONFIG_NOSYSTEM"] = "1"
    env["GIT_CONFIG_GLOBAL"] = os.devnull  # the user's identity is read once (identity_for)
    env["LC_ALL"] = "C"  # messages we read are in English
    if extra:
        env.update(extra)
    return env


class Git:
    """One working tree (the project, or an attempt's worktree with its git dir named)."""

    def __init__(
        self,
        cwd: Path,
        identity: Mapping[str, str] | None = None,
        git_dir: Path | None = None,
    ) -> None:
        self.cwd = cwd
        self.identity = dict(identity or {})
        self.explicit_dir = git_dir

    def argv(self, *args: str) -> list[str]:
        if self.explicit_dir is None:
            return ["git", "-C", str(self.cwd), *SAFE_CONFIG, *args]
        where = [f"--git-dir={self.explicit_dir}", f"--work-tree={self.cwd}"]
        return ["git", "-C", str(self.cwd), *where, *SAFE_CONFIG, *args]

    def run(
        self,
        *args: str,
        check: bool = True,
        stdin: str | None = None,
        env: Mapping[str, str] | None = None,
        doing: str | None = None,
    ) -> GitResult:
        """`doing` says what uet was doing, for the error a failure raises (with `check`)."""
        argv = self.argv(*args)
        proc = subprocess.run(
            argv,
            input=stdin,
            capture_output=True,
            text=True,
            env=git_env({**self.identity, **(env or {})}),
            check=False,
        )
        result = GitResult(proc.returncode, proc.stdout, proc.stderr, tuple(argv), str(self.cwd))
        if check and proc.returncode != 0:
            raise result.failure(doing or f"run git {args[0] if args else ''}".strip()).error()
        return result

    def out(self, *args: str, doing: str | None = None) -> str:
        return self.run(*args, doing=doing).out.strip()

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
    """The identity uet's commits carry: the user's (repository, global or environment),
    read once before any tool ran (later calls read no global config), else the fallback."""
    env_named = os.environ.get("GIT_AUTHOR_NAME") or os.environ.get("GIT_COMMITTER_NAME")
    if env_named:
        return {}
    argv = ["git", "-C", str(repo.cwd), "config", "--get"]
    env = {k: v for k, v in os.environ.items() if k not in _REDIRECTING}
    found = {}
    for key in ("user.name", "user.email"):
        proc = subprocess.run([*argv, key], capture_output=True, text=True, env=env, check=False)
        found[key] = proc.stdout.strip()
    if not (found["user.name"] and found["user.email"]):
        return dict(FALLBACK_IDENTITY)
    name, mail = found["user.name"], found["user.email"]
    return {
        "GIT_AUTHOR_NAME": name,
        "GIT_AUTHOR_EMAIL": mail,
        "GIT_COMMITTER_NAME": name,
        "GIT_COMMITTER_EMAIL": mail,
    }


#: files of a git dir that make git run programs or read other repositories
_SURFACE_FILES = ("config", "config.worktree", "commondir", "objects/info/alternates")
_SURFACE_DIRS = ("hooks", "info")
_SURFACE_LIMIT = 4 << 20
#: the block `uet run` appends to info/exclude (isolation._ignore_state): a run of another
#: project of the same repository may add its own while a tool runs; that is not the tool's
_UET_EXCLUDE = "info/exclude"
_UET_BLOCK = re.compile(rb"\n# uet-doit local state\n(|/[^\n]*)/\.uet/\n\1/\.doit\.db\*\n")


def _compared(name: str, entry: bytes | None) -> bytes | None:
    """An entry as the tamper check compares it: info/exclude without uet's own blocks."""
    if name != _UET_EXCLUDE or entry is None or entry.startswith(b"\0"):
        return entry
    return _UET_BLOCK.sub(b"", entry) or None


class GitSurface:
    """The files of a git dir through which git can be made to run code or read another
    repository (config, hooks, info/attributes, worktrees' config), as bytes: taken
    before a tool runs, compared after it, and put back when it changed them."""

    def __init__(self, git_dir: Path, admin: Path | None = None) -> None:
        self.git_dir = git_dir
        self.admin = admin  # the attempt's own worktree dir (others come and go meanwhile)
        self.files = self._read()

    def _paths(self) -> list[Path]:
        """The surface's files, links and folders, never looked into through a link (a tool
        could point `hooks` at a folder of yours: uet must neither read nor delete there)."""
        found = [self.git_dir / name for name in _SURFACE_FILES]
        for name in _SURFACE_DIRS:
            folder = self.git_dir / name
            if folder.is_symlink() or not folder.is_dir():
                found.append(folder)
                continue
            for top, dirs, files in os.walk(folder, followlinks=False):
                base = Path(top)
                found += [base / d for d in dirs if (base / d).is_symlink()]
                found += [base / f for f in files]
        if self.admin is not None:
            found += [self.admin / name for name in ("config.worktree", "commondir", "gitdir")]
        return sorted(found)

    @staticmethod
    def _entry(path: Path) -> bytes | None:
        """What a path is, as bytes: its content, or a marker for a link, folder or big file."""
        try:
            info = path.lstat()
        except FileNotFoundError:
            return None
        except OSError:
            return b"\0unreadable"
        if stat.S_ISLNK(info.st_mode):
            return b"\0link:" + os.fsencode(os.readlink(path))
        if stat.S_ISDIR(info.st_mode):
            return b"\0dir"
        if not stat.S_ISREG(info.st_mode) or info.st_size > _SURFACE_LIMIT:
            return f"\0other:{info.st_mode}:{info.st_size}:{info.st_mtime_ns}".encode()
        try:
            return path.read_bytes()
        except OSError:
            return b"\0unreadable"

    def _read(self) -> dict[str, bytes | None]:
        return {str(p.relative_to(self.git_dir)): self._entry(p) for p in self._paths()}

    def changes(self) -> list[str]:
        """The surface entries that differ from the snapshot (added, changed or removed)."""
        now = self._read()
        names = sorted(set(now) | set(self.files))
        return [n for n in names if _compared(n, now.get(n)) != _compared(n, self.files.get(n))]

    def restore(self, names: list[str]) -> None:
        """Put the snapshot back: what the tool added goes, what it changed is rewritten.
        Links are removed, never followed; a folder's parents are put back first."""
        for name in sorted(names):
            path = self.git_dir / name
            before = self.files.get(name)
            if name == _UET_EXCLUDE and before is not None and not before.startswith(b"\0"):
                now = self._entry(path) or b""  # keep the blocks other runs added meanwhile
                before += b"".join(
                    m.group(0) for m in _UET_BLOCK.finditer(now) if m.group(0) not in before
                )
            if before is not None and before.startswith(b"\0other:"):
                continue  # a big or special file uet did not copy: left for the user
            if path.is_symlink() or path.is_file():
                path.unlink()
            elif path.is_dir() and before != b"\0dir":
                shutil.rmtree(path)
            if before is None:
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            if before.startswith(b"\0link:"):
                os.symlink(os.fsdecode(before[len(b"\0link:") :]), path)
            elif before == b"\0dir":
                path.mkdir(exist_ok=True)
            elif before != b"\0unreadable":
                path.write_bytes(before)


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
