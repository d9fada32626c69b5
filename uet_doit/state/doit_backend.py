"""A doit dependency backend that commits each task's state the moment doit saves it.

doit's own backends write their file only at exit, so kill -9 loses the whole run's
records. This one keeps doit's interface (get/set/remove/dump) on SQLite in WAL mode and
commits when `Dependency.save_success` writes its last key (`deps:`), i.e. once per
finished task. Selected with `backend = "uet-sqlite"` (the `doit.BACKEND` entry point).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from doit.dependency import DatabaseException, JSONCodec

from uet_doit.errors import StateError

#: the key doit's Dependency.save_success writes last for every successful task
_LAST_KEY_OF_SAVE = "deps:"
#: backends open in this process, by file: a landing updates the one doit is using
_OPEN: weakref.WeakValueDictionary[str, DurableSqliteDB] = weakref.WeakValueDictionary()
#: a file's new state, keyed by path: (md5 before, (mtime, size, md5) after)
FileMoves = Mapping[str, tuple[str, tuple[float, int, str]]]


SQLITE_HEADER = b"SQLite format 3\x00"
_COLUMNS = ["task_id", "data"]


def dep_file_problem(path: Path) -> str | None:
    """Why `path` is not doit's uet-sqlite state (garbage, another program's SQLite file),
    found by reading only; None when it is ours, empty or absent (then it is made anew)."""
    try:
        with path.open("rb") as fh:
            header = fh.read(len(SQLITE_HEADER))
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"it cannot be read ({exc.strerror or exc})"
    if not header:
        return None
    if header != SQLITE_HEADER:
        return "it is not a SQLite database (damaged, or another kind of file)"
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
        try:
            rows = conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            tables = sorted(r[0] for r in rows)
            columns = [r[1] for r in conn.execute("PRAGMA table_info(doit_tasks)")]
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        return f"SQLite cannot read it ({exc})"
    if [t for t in tables if t != "doit_tasks"] or (tables and columns != _COLUMNS):
        shown = ", ".join(tables[:5]) + (", ..." if len(tables) > 5 else "")
        return f"it is a SQLite database of another program (tables: {shown})"
    return None


class DepFileError(StateError, DatabaseException):  # type: ignore[misc]  # doit is untyped
    """doit's state file is not doit's: uet shows it as a StateError (no traceback), plain
    doit as its own DatabaseException."""


def check_dep_file(path: Path) -> None:
    """A DepFileError when doit's state file is not doit's (uet run checks before it
    records the run; every other reader when it opens the file)."""
    problem = dep_file_problem(path)
    if problem is not None:
        raise DepFileError(
            f"doit's state file {path} cannot be used: {problem}; nothing was written to it",
            f"if it is not doit's, move it elsewhere (mv {path.name} {path.name}.bak): doit's "
            "record is then rebuilt and every step runs once more (the run store and its "
            "spend in .uet/ are kept)",
        )


class DurableSqliteDB:
    """doit backend: one row per task, committed per finished task (WAL, no fsync wait)."""

    desc = "SQLite, committed after every task (crash-safe)"

    def __init__(self, name: str, codec: Any, *, module_name: str | None = None) -> None:
        self.name = name
        self.codec = codec
        self._cache: dict[str, dict[str, Any]] = {}
        self._dirty: set[str] = set()
        self._raw: dict[str, str] | None = None  # rows read but not decoded yet
        check_dep_file(Path(name))  # before connecting: WAL mode and our table would write
        try:
            self._conn = sqlite3.connect(name, isolation_level=None, check_same_thread=False)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS doit_tasks (task_id TEXT PRIMARY KEY, data TEXT)"
            )
        except sqlite3.DatabaseError as exc:
            msg = (
                f"doit's state file {name!r} is not a uet-sqlite database ({exc}). It may have "
                "been written by another doit backend: remove it (and its -wal/-shm files) "
                "and the next run rebuilds it, re-running every task once."
            )
            raise DatabaseException(msg) from None
        self._follow_lock = threading.Lock()
        _OPEN[os.path.realpath(name)] = self

    def _task(self, task_id: str) -> dict[str, Any]:
        data = self._cache.get(task_id)
        if data is None:
            if self._raw is None:
                # one read of every row: doit asks about every task, one query each is slow
                self._raw = dict(self._conn.execute("SELECT task_id, data FROM doit_tasks"))
            text = self._raw.pop(task_id, None)
            data = self.codec.decode(text) if text else {}
            self._cache[task_id] = data
        return data

    def get(self, task_id: str, dependency: str) -> Any:
        return self._task(task_id).get(dependency)

    def set(self, task_id: str, dependency: str, value: Any) -> None:
        self._task(task_id)[dependency] = value
        self._dirty.add(task_id)
        if dependency == _LAST_KEY_OF_SAVE:
            self._write(task_id)

    def _write(self, task_id: str) -> None:
        self._conn.execute(
            "INSERT OR REPLACE INTO doit_tasks VALUES (?, ?)",
            (task_id, self.codec.encode(self._cache[task_id])),
        )
        self._dirty.discard(task_id)

    def in_(self, task_id: str) -> bool:
        return bool(self._task(task_id)) or task_id in self._dirty

    def remove(self, task_id: str) -> None:
        self._cache.pop(task_id, None)
        if self._raw is not None:
            self._raw.pop(task_id, None)
        self._dirty.discard(task_id)
        self._conn.execute("DELETE FROM doit_tasks WHERE task_id=?", (task_id,))

    def remove_all(self) -> None:
        self._cache.clear()
        self._raw = {}
        self._dirty.clear()
        self._conn.execute("DELETE FROM doit_tasks")

    def follow_moves(self, moves: FileMoves) -> int:
        """Tasks whose saved state of a file was its content before an isolated step's
        landing now hold its content after it: another step's landed edit of a shared
        input does not make them out of date (a user's edit still does). Returns how many
        tasks were updated. Safe while doit runs (it is called from worker threads)."""
        if not moves:
            return 0
        with self._follow_lock:
            if self._raw is None:
                self._raw = dict(self._conn.execute("SELECT task_id, data FROM doit_tasks"))
            updated = 0
            for task_id in [*self._cache, *list(self._raw)]:
                text = self._raw.pop(task_id, None)
                if text is not None:
                    if not any(f'"{path}"' in text for path in moves):
                        self._raw.setdefault(task_id, text)
                        continue
                    self._cache.setdefault(task_id, self.codec.decode(text))
                data = self._cache.get(task_id)
                if not data:
                    continue
                changed = False
                for path, (before, after) in moves.items():
                    state = data.get(path)
                    if isinstance(state, list | tuple) and len(state) == 3 and state[2] == before:
                        data[path] = list(after)
                        changed = True
                if changed:
                    updated += 1
                    if task_id not in self._dirty:
                        self._write(task_id)
            return updated

    def dump(self) -> None:
        for task_id in list(self._dirty):
            self._write(task_id)
        if _OPEN.get(os.path.realpath(self.name)) is self:
            del _OPEN[os.path.realpath(self.name)]
        self._conn.close()


def follow_moves(dep_file: Path, moves: FileMoves) -> int:
    """`DurableSqliteDB.follow_moves` on the backend doit has open on `dep_file` in this
    process, else on the file itself."""
    if not moves:
        return 0
    live = _OPEN.get(os.path.realpath(dep_file))
    if live is not None:
        return live.follow_moves(moves)
    if not dep_file.exists():
        return 0
    db = DurableSqliteDB(str(dep_file), JSONCodec())
    try:
        return db.follow_moves(moves)
    finally:
        db.dump()
