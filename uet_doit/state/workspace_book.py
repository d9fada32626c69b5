"""The worktrees of isolated attempts in state.db: which exist, for which step, and why a
kept one failed (what `uet workspaces` lists and `uet clean` removes)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from uet_doit.state.connection import Connections, stored
from uet_doit.state.records import WorkspaceRecord, WorkspaceState


def _workspace(row: Any) -> WorkspaceRecord:
    return WorkspaceRecord(
        row["path"],
        row["branch"],
        row["run_id"],
        row["bundle_id"],
        row["ws_id"],
        row["step_id"],
        row["attempt"],
        row["base"],
        WorkspaceState(row["status"]),
        row["failure_class"],
        row["message"],
        row["created"],
        row["updated"],
        row["prepared"],
    )


class WorkspaceBook:
    def __init__(self, db: Connections, path: Path) -> None:
        self._db = db
        self.path = path

    @stored
    def add(
        self,
        path: str,
        branch: str,
        run_id: str,
        bundle_id: str,
        ws_id: str,
        step_id: str,
        attempt: int,
        base: str,
    ) -> None:
        self._db.get().execute(
            "INSERT OR REPLACE INTO workspaces (path, branch, run_id, bundle_id, ws_id, step_id,"
            " attempt, base, status, created) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                path,
                branch,
                run_id,
                bundle_id,
                ws_id,
                step_id,
                attempt,
                base,
                WorkspaceState.ACTIVE,
                time.time(),
            ),
        )

    @stored
    def mark_failed(self, path: str, failure_class: str, message: str) -> None:
        self._db.get().execute(
            "UPDATE workspaces SET status=?, failure_class=?, message=?, updated=? WHERE path=?",
            (WorkspaceState.FAILED, failure_class, message[:2000], time.time(), path),
        )

    @stored
    def mark_parked(self, path: str) -> None:
        self._db.get().execute(
            "UPDATE workspaces SET status=?, branch='', updated=? WHERE path=?",
            (WorkspaceState.PARKED, time.time(), path),
        )

    @stored
    def set_prepared(self, path: str, tree: str) -> None:
        self._db.get().execute("UPDATE workspaces SET prepared=? WHERE path=?", (tree, path))

    @stored
    def find(self, run_id: str, step_id: str, attempt: int) -> WorkspaceRecord | None:
        row = (
            self._db.get()
            .execute(
                "SELECT * FROM workspaces WHERE run_id=? AND step_id=? AND attempt=?",
                (run_id, step_id, attempt),
            )
            .fetchone()
        )
        return _workspace(row) if row else None

    @stored
    def remove(self, path: str) -> None:
        self._db.get().execute("DELETE FROM workspaces WHERE path=?", (path,))

    @stored
    def all(self) -> list[WorkspaceRecord]:
        rows = self._db.get().execute("SELECT * FROM workspaces ORDER BY created").fetchall()
        return [_workspace(r) for r in rows]

    @stored
    def of_step(self, bundle_id: str, step_id: str) -> list[WorkspaceRecord]:
        rows = (
            self._db.get()
            .execute(
                "SELECT * FROM workspaces WHERE bundle_id=? AND step_id=? ORDER BY created",
                (bundle_id, step_id),
            )
            .fetchall()
        )
        return [_workspace(r) for r in rows]

    @stored
    def get(self, path: str) -> WorkspaceRecord | None:
        row = self._db.get().execute("SELECT * FROM workspaces WHERE path=?", (path,)).fetchone()
        return _workspace(row) if row else None
