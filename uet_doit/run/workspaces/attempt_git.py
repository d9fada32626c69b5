"""The git an attempt's tool sees, kept apart from the git uet judges the attempt with.

`git worktree add` gives a worktree an administrative dir inside the project's git dir
(`worktrees/<name>`: its HEAD and index), reached through the `.git` file in the worktree.
A tool that commits (aider) would write there, and into the project's objects and refs,
so the sandbox could not keep the project's git dir read-only. Before the tool runs, the
worktree's `.git` file is pointed at a git dir of the attempt's own: its branch, index and
config, and the project's objects shared read-only through `objects/info/alternates`.

uet itself never follows that `.git` file: it names the administrative dir explicitly
(`Git(path, git_dir=admin)`), so nothing the tool wrote into its own git dir (config,
hooks, refs) is read or run. The link is put back before git itself manages the worktree
(`git worktree move/remove`).
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from uet_doit.run.workspaces.git import Git

PRIVATE_DIR = "attempt-git"


def admin_dir(common: Path, path: Path) -> Path | None:
    """The administrative dir git made for the worktree at `path` (read from the project's
    git dir, never from the worktree)."""
    folder = common / "worktrees"
    if not folder.is_dir():
        return None
    want = (path / ".git").resolve()
    for admin in folder.iterdir():
        try:
            named = (admin / "gitdir").read_text(encoding="utf-8").strip()
        except OSError:
            continue
        if Path(named).resolve() == want:
            return admin
    return None


def private_git_dir(state_dir: Path, path: Path) -> Path:
    return state_dir / PRIVATE_DIR / path.parent.name / path.name


def give_private_git(
    top: Git,
    wt: Git,
    path: Path,
    private: Path,
    branch: str,
    own_files: Sequence[str],
) -> None:
    """Point the worktree at a git dir of the attempt's own (see the module doc)."""
    assert wt.explicit_dir is not None
    shutil.rmtree(private, ignore_errors=True)
    (private / "refs" / "heads").mkdir(parents=True)
    (private / "refs" / "tags").mkdir()
    (private / "objects" / "info").mkdir(parents=True)
    (private / "info").mkdir()
    objects = (top.common_dir() / "objects").resolve()
    (private / "objects" / "info" / "alternates").write_text(f"{objects}\n", encoding="utf-8")
    head = wt.out("rev-parse", "HEAD")
    ref = private / "refs" / "heads" / branch
    ref.parent.mkdir(parents=True, exist_ok=True)
    ref.write_text(head + "\n", encoding="utf-8")
    (private / "HEAD").write_text(f"ref: refs/heads/{branch}\n", encoding="utf-8")
    (private / "config").write_text(_config(wt.identity), encoding="utf-8")
    index = wt.explicit_dir / "index"
    if index.exists():
        shutil.copyfile(index, private / "index")
    excluded = "".join(f"{pattern}\n" for pattern in own_files)
    (private / "info" / "exclude").write_text(excluded, encoding="utf-8")
    (path / ".git").write_text(f"gitdir: {private}\n", encoding="utf-8")


def _config(identity: Mapping[str, str]) -> str:
    text = "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = false\n"
    name, mail = identity.get("GIT_AUTHOR_NAME"), identity.get("GIT_AUTHOR_EMAIL")
    if name and mail:
        text += f"[user]\n\tname = {name}\n\temail = {mail}\n"
    return text


def restore_link(path: Path, admin: Path | None) -> None:
    """The worktree's `.git` file back at its administrative dir, for `git worktree`."""
    if admin is None or not path.is_dir():
        return
    link = path / ".git"
    if link.is_dir() and not link.is_symlink():
        shutil.rmtree(link)
    elif link.exists() or link.is_symlink():
        link.unlink()
    link.write_text(f"gitdir: {admin}\n", encoding="utf-8")


def drop_private_git(state_dir: Path, path: Path) -> None:
    shutil.rmtree(private_git_dir(state_dir, path), ignore_errors=True)
