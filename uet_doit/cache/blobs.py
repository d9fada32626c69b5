"""Content hashes (of files, of JSON values), and putting a restored file in place atomically."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

CHUNK = 1 << 20
#: the hash of a file that is not there
MISSING = "missing"


def text_digest(value: Any) -> str:
    """sha256 of a JSON value: what a key holds instead of the value itself."""
    text = json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def digest_file(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            sha.update(chunk)
    return sha.hexdigest()


def copy_hashed(src: BinaryIO, dst: BinaryIO | None, limit: int) -> tuple[str, int]:
    """Copy `src` to `dst` (or only read it) a chunk at a time: its sha256 and length, the
    reading stopped one byte past `limit` (so an endless or oversized source costs nothing)."""
    sha = hashlib.sha256()
    length = 0
    while length <= limit:
        chunk = src.read(min(CHUNK, limit + 1 - length))
        if not chunk:
            break
        length += len(chunk)
        sha.update(chunk)
        if dst is not None:
            dst.write(chunk)
    return sha.hexdigest(), length


class FileHasher:
    """sha256 of project files by relative path, remembered per (size, mtime, inode) so the
    steps of one run that share an input hash it once. A folder hashes its files' names and
    contents; a missing path is MISSING."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._memo: dict[tuple[str, int, int, int], str] = {}
        self._lock = threading.Lock()

    def __call__(self, rel: str) -> str:
        path = self.root / rel
        try:
            st = path.stat()
        except OSError:
            return MISSING
        if path.is_dir():
            return self._folder(path)
        memo_key = (rel, st.st_size, st.st_mtime_ns, st.st_ino)
        with self._lock:
            known = self._memo.get(memo_key)
        if known is not None:
            return known
        try:
            value = digest_file(path)
        except OSError:
            return MISSING
        with self._lock:
            self._memo[memo_key] = value
        return value

    def _folder(self, path: Path) -> str:
        sha = hashlib.sha256(b"folder\0")
        for child in sorted(_files_under(path)):
            rel = child.relative_to(self.root).as_posix()
            sha.update(f"{child.relative_to(path).as_posix()}\0{self(rel)}\0".encode())
        return sha.hexdigest()


def _files_under(path: Path) -> Iterator[Path]:
    for base, dirs, files in os.walk(path):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            yield Path(base) / name


def temp_beside(path: Path) -> Path:
    """A temporary name in the target's folder (so the final rename is atomic)."""
    return path.with_name(f".{path.name}.uet-tmp-{os.getpid()}-{threading.get_ident()}")
