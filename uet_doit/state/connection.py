"""Connections to state.db: one per thread and process, opened only on a store that is ours.

A new store is created complete (schema written to a temporary file, then linked into
place), so an empty or foreign file at that path is never mistaken for a fresh store and
never written into.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sqlite3
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from uet_doit.errors import StateError
from uet_doit.state.schema import check_tables, corrupt_error, migrate, write_error

P = ParamSpec("P")
R = TypeVar("R")


def stored(method: Callable[P, R]) -> Callable[P, R]:
    """SQLite errors leave the store as StateErrors that say what happened and what to do."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except sqlite3.OperationalError as exc:
            owner = args[0]
            path = getattr(owner, "path", Path("state.db"))
            text = str(exc)
            if "no such table" in text or "no such column" in text:
                raise corrupt_error(path, exc) from None
            raise write_error(path, exc) from None
        except sqlite3.DatabaseError as exc:
            raise corrupt_error(getattr(args[0], "path", Path("state.db")), exc) from None

    return wrapper


class Connections:
    """Per-thread, per-process connections to one database file (or one in-memory one)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._local = threading.local()
        self._checked = False
        self._memory: sqlite3.Connection | None = None
        self._opened: list[tuple[int, threading.Thread, sqlite3.Connection]] = []  # to close
        self._generation = 0  # a close() makes every thread open a new one
        self._lock = threading.Lock()

    def get(self) -> sqlite3.Connection:
        if self.path is None:
            if self._memory is None:
                self._memory = _open(":memory:")
                migrate(self._memory, Path(":memory:"))
            return self._memory
        pid = os.getpid()
        cached = getattr(self._local, "conn", None)
        if cached is None or cached[0] != pid or cached[1] != self._generation:
            conn = self._connect(self.path)
            with self._lock:
                self._opened.append((pid, threading.current_thread(), conn))
            self._local.conn = (pid, self._generation, conn)
            return conn
        opened: sqlite3.Connection = cached[2]
        return opened

    def close(self) -> None:
        """Close the connections of this thread and of threads that have ended (a run's
        end: its worker threads are gone). One a live thread may still be using (doit's,
        after a Ctrl-C) is left to it: closing it under a query would crash the process."""
        me, pid = threading.current_thread(), os.getpid()  # a fork's are its parent's
        with self._lock:
            self._generation += 1
            done = [c for p, t, c in self._opened if p == pid and (t is me or not t.is_alive())]
            self._opened = [entry for entry in self._opened if entry[2] not in done]
        for conn in done:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        if self._memory is not None:
            self._memory.close()
            self._memory = None

    def _connect(self, path: Path) -> sqlite3.Connection:
        if not self._checked:
            _create_if_absent(path)
        try:
            conn = _open(str(path), wal=False)
            if not self._checked:
                migrate(conn, path)
                check_tables(conn, path)
                self._checked = True
            conn.execute("PRAGMA journal_mode=WAL")
        except sqlite3.DatabaseError as exc:
            raise corrupt_error(path, exc) from None
        return conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction that takes the lock first, so check-and-write is atomic."""
        conn = self.get()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


def _open(name: str, *, wal: bool = True) -> sqlite3.Connection:
    """A connection; WAL is switched on only once the file is known to be ours (switching
    it rewrites the file header)."""
    conn = sqlite3.connect(name, timeout=30, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA busy_timeout=30000")
    conn.execute("PRAGMA synchronous=NORMAL")
    if wal and name != ":memory:":
        conn.execute("PRAGMA journal_mode=WAL")
    return conn


def _create_if_absent(path: Path) -> None:
    """Make a complete new store, or leave whatever is at `path` alone."""
    try:
        if path.exists():
            if path.stat().st_size == 0:
                msg = f"the run store {path} is an empty file (0 bytes), not a uet store"
                raise StateError(
                    msg,
                    "it was not created by uet (a complete store is never empty): check what "
                    f"made it; if nothing is lost, move it aside (mv {path} {path}.empty)",
                )
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".state-", suffix=".db", dir=path.parent)
        os.close(fd)
    except OSError as exc:
        raise write_error(path, exc) from None
    try:
        conn = _open(tmp)
        migrate(conn, Path(tmp))
        conn.close()
        with contextlib.suppress(FileExistsError):  # another process made it first: use theirs
            os.link(tmp, path)
    except OSError as exc:
        raise write_error(path, exc) from None
    finally:
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(OSError):
                os.unlink(tmp + suffix)


def row_dict(row: Any) -> dict[str, Any]:
    return {k: row[k] for k in row.keys()}  # noqa: SIM118 (sqlite3.Row has no items())
