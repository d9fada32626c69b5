"""Circuit breakers as stored in state.db: shared by every worker process and later runs.

The state machine itself is pure (resilience.BreakerState); this reads and writes it, one
transaction per decision, so two workers never both take the half-open probe.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from uet_doit.state.store import RunStore


class BreakerBook:
    """Breaker state in state.db, read and written in one transaction per decision."""

    def __init__(self, store: RunStore) -> None:
        self.store = store

    def _load(self, conn: sqlite3.Connection, tool: str) -> Any:
        from uet_doit.run.resilience import BreakerState

        row = conn.execute("SELECT * FROM breakers WHERE tool=?", (tool,)).fetchone()
        if row is None:
            return BreakerState(tool)
        return BreakerState(
            tool,
            row["state"],
            row["failures"],
            row["last_failure"],
            row["opened_at"],
            row["probe_started"],
        )

    def _save(self, conn: sqlite3.Connection, st: Any) -> None:
        conn.execute(
            "INSERT OR REPLACE INTO breakers (tool, state, failures, last_failure, opened_at, "
            "probe_started) VALUES (?,?,?,?,?,?)",
            (st.tool, st.state, st.failures, st.last_failure, st.opened_at, st.probe_started),
        )

    def admit(self, tool: str, policy: Any, now: float) -> tuple[bool, bool, str]:
        with self.store.transaction() as conn:
            st = self._load(conn, tool)
            before = st.state
            decision: tuple[bool, bool, str] = st.admit(policy, now)
            if st.state != before or decision[1]:
                self._save(conn, st)
        return decision

    def record(self, tool: str, policy: Any, success: bool, now: float) -> str:
        with self.store.transaction() as conn:
            st = self._load(conn, tool)
            if success and st.state == "closed" and st.failures == 0:
                return "closed"
            st.record(policy, success, now)
            self._save(conn, st)
        return str(st.state)

    def all(self) -> list[sqlite3.Row]:
        return list(self.store.conn.execute("SELECT * FROM breakers ORDER BY tool"))

    def reset(self, tool: str | None = None) -> int:
        if tool:
            cur = self.store.conn.execute("DELETE FROM breakers WHERE tool=?", (tool,))
        else:
            cur = self.store.conn.execute("DELETE FROM breakers")
        return cur.rowcount
