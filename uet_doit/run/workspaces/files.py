"""Files between the project's working tree, an attempt's worktree and the landing branch:
the digest of the inputs a tool saw, inputs the user edited (copied in as the starting
point), outputs put back from the branch, and symbolic links a landed change must not hold.

Outputs are compared by git's object ids and written from `git cat-file` a chunk at a
time, so a large output is never read whole.
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
from pathlib import Path

from uet_doit.cache.blobs import CHUNK, digest_file
from uet_doit.run.workspaces.git import Git, git_env
from uet_doit.run.workspaces.landing import checked_out_branch


def inputs_digest(base: Path, files: tuple[str, ...]) -> str:
    """sha256 over the step's inputs as they are under `base` (a missing one counts)."""
    digest = hashlib.sha256()
    for rel in sorted(set(files)):
        digest.update(rel.encode() + b"\0")
        try:
            digest.update(digest_file(base / rel).encode())
        except OSError:
            digest.update(b"-")
    return digest.hexdigest()


def differs(user: Path, tip: Path) -> bool:
    """The user's file exists and the worktree's copy (the tip's) is missing or other."""
    try:
        mine = user.stat()
    except OSError:
        return False
    if not stat.S_ISREG(mine.st_mode):
        return not tip.exists()
    try:
        theirs = tip.stat()
    except OSError:
        return True
    return mine.st_size != theirs.st_size or digest_file(user) != digest_file(tip)


def escaping_links(tree: Path, changes: list[tuple[str, str]]) -> list[str]:
    """Changed paths that are symbolic links leading out of the worktree or into a `.git`
    or `.uet` folder (`path -> target`): landed, they would reach what no step may touch."""
    found = []
    top = tree.resolve()
    for status, rel in changes:
        path = tree / rel
        if status == "D" or not path.is_symlink():
            continue
        try:
            inner = Path(os.path.realpath(path)).relative_to(top).parts
            leads_out = ".git" in inner or ".uet" in inner
        except ValueError:  # outside the worktree altogether
            leads_out = True
        if leads_out:
            found.append(f"{rel} -> {os.readlink(path)}")
    return found


class BranchFiles:
    """The landing branch's files, as the project's working tree should hold them."""

    def __init__(self, top: Git, branch: str, root: Path, prefix: str) -> None:
        self.top = top
        self.branch = branch
        self.root = root
        self.prefix = prefix

    def checked_out(self) -> bool:
        return checked_out_branch(self.top) == self.branch

    def blob_id(self, rev: str, rel: str) -> str | None:
        found = self.top.run(
            "rev-parse", "-q", "--verify", f"{rev}:{self.prefix}{rel}", check=False
        )
        return found.out.strip() if found.code == 0 else None

    def same_at_tip(self, commit: str, paths: list[str]) -> bool:
        """Whether the branch's tip still holds each path as `commit` left it."""
        tip = f"refs/heads/{self.branch}"
        ids = [(self.blob_id(tip, p), self.blob_id(commit, p)) for p in paths]
        return all(now is not None and now == then for now, then in ids)

    def write(self, rel: str) -> bool:
        """Write `rel` from the branch's tip into the working tree (through a temp file and
        a rename); False when the tip does not hold it."""
        target = self.root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = target.with_name(f".{target.name}.uet-restore")
        argv = self.top.argv("cat-file", "blob", f"refs/heads/{self.branch}:{self.prefix}{rel}")
        with (
            temp.open("wb") as out,
            subprocess.Popen(
                argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=git_env()
            ) as proc,
        ):
            assert proc.stdout is not None
            while chunk := proc.stdout.read(CHUNK):
                out.write(chunk)
        if proc.returncode != 0:
            temp.unlink(missing_ok=True)
            return False
        temp.replace(target)
        return True

    def materialise(self, outputs: tuple[str, ...]) -> list[str]:
        """Outputs missing from the working tree that the branch holds, written, so a step
        that re-ran is seen to have made them even when the tip had the same bytes."""
        if not self.checked_out():
            return []
        return [rel for rel in outputs if not os.path.lexists(self.root / rel) and self.write(rel)]
