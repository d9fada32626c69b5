"""A folder store's files, read and removed without trusting them.

A shared folder is written by anyone who can write to it: an entry or blob may be a FIFO
(opening it would wait forever), a symlink to `/dev/zero` (endless) or to a file outside
the store, or a name built to lead out of it. So a file of the store is opened without
following a symlink and without waiting, read only if it is a regular file and never past
the size it may have, and only files at uet's own layout paths are ever removed.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from pathlib import Path
from typing import BinaryIO

from uet_doit.cache.entries import DamagedEntry

#: an entry holds names, hashes and a 4000-character output tail: far under this
MAX_ENTRY_BYTES = 16 << 20
_HEX = "[0-9a-f]{64}"
#: the paths uet writes under a store, relative to its base (temporaries included)
LAYOUT = re.compile(
    rf"(blobs/(?P<b>[0-9a-f]{{2}})/(\.)?(?P<blob>{_HEX})(\.uet-tmp-[0-9a-f-]+)?"
    rf"|entries/(?P<e>[0-9a-f]{{2}})/(\.)?(?P<entry>{_HEX})\.json(\.uet-tmp-[0-9a-f]+)?"
    r"|steps/[^/]+/[^/]+\.json(\.uet-tmp-[0-9a-f]+)?)"
)


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "folder"),
        (stat.S_ISFIFO, "FIFO"),
        (stat.S_ISSOCK, "socket"),
    ):
        if test(mode):
            return name
    return "device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "special file"


class NotAStoreFile(DamagedEntry):
    """What is at a store's path is not a regular file (`what` says what it is)."""

    def __init__(self, path: str, what: str) -> None:
        self.what = f"is {what}, not a file uet wrote"
        super().__init__(f"{path.rsplit('/', 1)[-1][:16]}… in the store {self.what}")


def open_regular(path: str) -> BinaryIO:
    """`path` opened for reading if it is a regular file (not through a symlink); a
    DamagedEntry says what it is otherwise. FileNotFoundError when nothing is there."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise NotAStoreFile(path, "a symbolic link") from None
        raise
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise NotAStoreFile(path, f"a {_kind(mode)}")
    return os.fdopen(fd, "rb")


def read_bounded(handle: BinaryIO, limit: int, what: str) -> bytes:
    """All of `handle`, or a DamagedEntry once it holds more than `limit` bytes."""
    data = handle.read(limit + 1)
    if len(data) > limit:
        msg = f"{what} is larger than any uet writes ({limit >> 20} MiB)"
        raise DamagedEntry(msg)
    return data


def is_regular(path: str) -> bool:
    """Whether a regular file (not a symlink, FIFO, ...) is at `path`."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def in_layout(base: str, path: str, local: bool) -> bool:
    """Whether `path` is one of uet's own paths in the store at `base`, with no folder on
    the way a symlink leading elsewhere (what `remove` may delete)."""
    prefix = base.rstrip("/") + "/"
    if not path.startswith(prefix):
        return False
    match = LAYOUT.fullmatch(path[len(prefix) :])
    if match is None:
        return False
    folder = match.group("b") or match.group("e")
    digest = match.group("blob") or match.group("entry")
    if folder is not None and digest is not None and not digest.startswith(folder):
        return False
    if not local:
        return True
    parent = Path(path).parent
    return parent.resolve() == Path(base).resolve() / parent.relative_to(base)
