"""A doit dependency backend that commits each task's state the moment doit saves it.

doit's own backends write their file only at exit, so kill -9 loses the whole run's
records. This one keeps doit's interface (get/set/remove/dump) on SQLite in WAL mode and
commits when `Dependency.save_success` writes its last key (`deps:`), i.e. once per
finished task. Selected with `backend = "uet-sqlite"` (the `doit.BACKEND` entry point).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from doit.dependency import DatabaseException

#: the key doit's Dependency.save_success writes last for every successful task
_LAST_KEY_OF_SAVE = "deps:"


class DurableSqliteDB:
    """doit backend: one row per task, committed per finished task (WAL, no fsync wait)."""

    desc = "SQLite, committed after every task (crash-safe)"

    def __init__(self, name: str, codec: Any, *, module_name: str | None = None) -> None:
        self.name = name
        self.codec = codec
        self._cache: dict[str, dict[str, Any]] = {}
        self._dirty: set[str] = set()
        self._raw: dict[str, str] | None = None  # rows read but not decoded yet
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

    def dump(self) -> None:
        for task_id in list(self._dirty):
            self._write(task_id)
        self._conn.close()
